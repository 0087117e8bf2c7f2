"""Atomic file writes: write beside the target under a temporary name, then rename over it.

A crash or a full disk then leaves either the previous good file or the new complete one,
never a truncated file under the final name.
"""

import contextlib
import fcntl
import json
import logging
import os
import pathlib

from mobilenets.errors import UserError, WriteError

log = logging.getLogger("mobilenets")


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same suffixes); renames it to `path` on success.

    The temporary keeps the target's suffixes (`.keras`, `.weights.h5`) because Keras checks them.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:  # name the file the user knows, not the temporary
        raise WriteError(error.errno, error.strerror, str(path)) from error
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path, data):
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_text(path, text):
    write_bytes(path, text.encode())


def write_json(path, value):
    write_text(path, json.dumps(value, indent=2, sort_keys=False) + "\n")


def read_json(path):
    """The JSON object at `path`, or {} if there is none (or it is damaged)."""
    try:
        value = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


@contextlib.contextmanager
def run_lock(directory):
    """Holds `directory/.lock` for the block: a second command on the same run directory exits
    with a UserError naming the process that holds it.

    An flock on the file: the kernel releases it when its process ends, however it ends
    (SIGKILL, power loss on a local disk), so a lock left by a dead process is simply free;
    the file's PID then names the process whose lock is taken over.
    """
    path = pathlib.Path(directory) / ".lock"
    try:
        handle = open(path, "a+")  # noqa: SIM115 - held open for the block
    except OSError as error:
        raise WriteError(error.errno, error.strerror, str(path)) from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"{directory} is in use by {holder}: one command at a time per "
                            "run directory (wait for it, or use another --workdir)") from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            log.info("took over the lock of %s in %s, which is no longer running", previous,
                     directory)
        handle.seek(0)
        handle.truncate()
        handle.write(f"mobilenets (PID {os.getpid()})\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
