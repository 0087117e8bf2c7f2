"""Atomic file writes: write beside the target under a temporary name, then rename over it.

A crash or a full disk then leaves either the previous good file or the new complete one,
never a truncated file under the final name.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import pathlib
import re
import shutil

from mobilenets.errors import UserError, WriteError

log = logging.getLogger("mobilenets")

# What a write can fail with that its user can fix: a full disk or quota, a read-only or
# forbidden folder, a failing device.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


@contextlib.contextmanager
def atomic_path(path, needed=0):
    """Yields a temporary path beside `path` (same suffixes); renames it to `path` on success.

    The temporary keeps the target's suffixes (`.keras`, `.weights.h5`) because Keras checks them.
    `needed` (bytes, an estimate) is checked against the free space first: h5py, which writes
    Keras' `.h5` and `.keras` files, can crash the process on a full disk after reporting it.
    Any failure is a `WriteError` naming `path`.
    """
    path = pathlib.Path(path)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ensure_space(path.parent, needed)
        yield temporary
        with open(temporary, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except OSError as error:  # name the file the user knows, not the temporary
        raise WriteError(error.errno, error.strerror, str(path)) from error
    finally:
        with contextlib.suppress(OSError):  # a read-only folder: keep the real error
            temporary.unlink(missing_ok=True)


def ensure_space(folder, needed):
    """Raises a full-disk OSError if `folder`'s file system has less than about `needed`
    bytes free (an HDF5 file of `needed` bytes of values takes up to about 12% more; 1 MiB
    more for the file system's own blocks)."""
    if not needed:
        return
    free = shutil.disk_usage(folder).free
    if free < 1.25 * needed + 2**20:
        raise OSError(errno.ENOSPC, f"No space left on device (about {needed / 2**20:.1f} MiB "
                      f"needed, {free / 2**20:.1f} MiB free)")


def write_error(error, fallback):
    """`error` (an OSError, or TensorFlow's error for a full disk in a TensorBoard log) as a
    `WriteError` naming the file it names, else `fallback`; None if it is not about a write."""
    if isinstance(error, WriteError):
        return error
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
        return WriteError(error.errno, error.strerror, error.filename or str(fallback))
    text = str(error)
    if "No space left on device" in text:
        named = re.search(r"(/[^;\s]+)[;:]? No space left on device", text)
        return WriteError(errno.ENOSPC, "No space left on device",
                          named[1] if named else str(fallback))
    return None


def writable_folder(folder, name):
    """Creates `folder` if need be and checks that files can be written in it; a UserError
    naming it (`name`: what the user called it, e.g. the option) if not."""
    path = pathlib.Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"{name} {path} cannot be created or written ({error.strerror})") from None
    return path


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
