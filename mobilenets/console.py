"""What the `mobilenets` command prints: its own log (epochs, scores, where files went), and the
native libraries' lines (TensorFlow's C++ start-up, the TFLite converter's, LiteRT's) only with
`--verbose` or where they come with a failure.

TensorFlow writes its start-up lines (oneDNN, CUDA drivers, CPU instructions) from C++ as its
libraries load, before its own TF_CPP_MIN_LOG_LEVEL applies to them, and the converter and
LiteRT print to the process's stderr directly: only holding back file descriptor 2 silences
them (`quiet_native`).
"""

import contextlib
import os
import sys
import tempfile

VERBOSE = "MOBILENETS_VERBOSE"  # "1": everything the libraries print
_TF_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_USERS_TF_LEVEL = os.environ.get(_TF_LEVEL)  # as the user started the process


def default_tensorflow_level(level="2"):
    """TensorFlow's C++ log level `level` (2: errors only) unless the user set one."""
    os.environ[_TF_LEVEL] = _USERS_TF_LEVEL if _USERS_TF_LEVEL is not None else level


def setup(verbose):
    """The command's choice, before TensorFlow is imported: everything (`verbose`), or no
    native log at all (TensorFlow's level 3: fatal only); the user's TF_CPP_MIN_LOG_LEVEL wins
    either way."""
    if verbose:
        os.environ[VERBOSE] = "1"
    default_tensorflow_level("0" if verbose else "3")


def verbose():
    return os.environ.get(VERBOSE) == "1"


@contextlib.contextmanager
def quiet_native():
    """Within the block, what is written to file descriptor 2 (native libraries' lines, but
    also Python's stderr) is held back, and shown after it only if the block raises. Nothing
    is held back when `verbose()`. Keep such blocks to a library call."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            _restore(saved)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        else:
            _restore(saved)


def _restore(saved):
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)


def quiet_at_exit():
    """From now on, unless `verbose()`, file descriptor 2 goes nowhere: for a program's last
    moments, when the native libraries tear down and say so (LiteRT's "DestroyAccelerator")."""
    if verbose():
        return
    sys.stderr.flush()
    with open(os.devnull, "wb") as nowhere:
        os.dup2(nowhere.fileno(), 2)
