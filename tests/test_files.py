"""Atomic writes: a full disk, a read-only folder or TensorFlow's full-disk error end as a
WriteError naming the file the user knows, with the previous file kept."""

import errno
import pathlib
import shutil

import pytest
import tensorflow as tf

from mobilenets import files
from mobilenets.errors import UserError, WriteError


def full_disk(free):
    usage = shutil.disk_usage("/")
    return lambda folder: usage._replace(free=free)


def test_too_little_free_space_is_reported_before_writing(tmp_path, monkeypatch):
    target = tmp_path / "ckpt.weights.h5"
    target.write_bytes(b"previous")
    monkeypatch.setattr(files.shutil, "disk_usage", full_disk(3 * 2**20))
    with pytest.raises(WriteError) as caught:
        with files.atomic_path(target, needed=4 * 2**20) as temporary:
            temporary.write_bytes(b"never")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert "about 4.0 MiB needed, 3.0 MiB free" in caught.value.strerror
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]
    with files.atomic_path(target, needed=1 * 2**20) as temporary:  # 1.25 + 1 MiB fits in 3
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"new"


def test_a_failing_cleanup_keeps_the_real_error(tmp_path, monkeypatch):
    def read_only(self, missing_ok=False):
        raise PermissionError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "unlink", read_only)
    with pytest.raises(WriteError) as caught:
        with files.atomic_path(tmp_path / "a.json"):
            raise OSError(errno.EROFS, "Read-only file system")
    assert caught.value.filename == str(tmp_path / "a.json")
    assert caught.value.strerror == "Read-only file system"


def test_tensorflow_full_disk_errors_name_their_file(tmp_path):
    # TensorBoard's summary writer on a full tmpfs, as TensorFlow 2.21 reports it.
    message = ("{{function_node __wrapped__CreateSummaryFileWriter_device_/job:localhost/"
               "replica:0/task:0/device:CPU:0}} /run/logs/validation/events.out.tfevents.1.v2; "
               "No space left on device\n\tFailed to flush 1 events to /run/logs/validation/"
               "events.out.tfevents.1.v2")
    error = files.write_error(tf.errors.ResourceExhaustedError(None, None, message), tmp_path)
    assert isinstance(error, WriteError) and error.errno == errno.ENOSPC
    assert error.filename == "/run/logs/validation/events.out.tfevents.1.v2"
    csv_error = files.write_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert csv_error.filename == str(tmp_path)
    assert files.write_error(OSError(errno.ECONNRESET, "reset"), tmp_path) is None
    assert files.write_error(tf.errors.InvalidArgumentError(None, None, "bad"), tmp_path) is None


def test_unwritable_folders_are_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"--workdir /proc/mobilenets/export cannot be created"):
        files.writable_folder("/proc/mobilenets/export", "--workdir")
    assert files.writable_folder(tmp_path / "a" / "b", "--workdir").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []
