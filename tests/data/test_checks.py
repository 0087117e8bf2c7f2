"""The start-up check of image folders, remembered: a second start decodes nothing that did
not change, a changed file is checked again, a killed first check resumes, the bytes stay on
disk when they do not fit `data.max_cache_mb`, and an image that breaks after the check is
skipped and counted in training."""

import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import checks, pipeline
from mobilenets.errors import UserError

rng = np.random.default_rng(0)


def image_file(path, fmt, size=(24, 20), mode="RGB"):
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, fmt)


def make_folder(root):
    """Two classes of JPEGs and PNGs, a GIF, a TIFF (TensorFlow cannot decode it: converted)
    and a truncated JPEG (unreadable)."""
    for label in ("a", "b"):
        folder = root / "train" / label
        folder.mkdir(parents=True)
        for index in range(4):
            image_file(folder / f"{index}.jpg", "JPEG")
            image_file(folder / f"{index}.png", "PNG")
    image_file(root / "train/a/anim.gif", "GIF")
    image_file(root / "train/b/scan.tiff", "TIFF")
    whole = (root / "train/a/0.jpg").read_bytes()
    (root / "train/b/truncated.jpg").write_bytes(whole[:len(whole) // 2])


def load(root, **options):
    config = DataConfig(source="folder", dir=str(root), eval_split="", validation_fraction=0.2,
                        **options)
    return data_lib.load(config, splits=("train", "eval"))


@pytest.fixture
def counted(monkeypatch):
    """Counts the files each kind of check decodes."""
    calls = {"jpeg": 0, "general": 0}
    jpeg_checks, check_image = checks._jpeg_checks, checks.check_image

    def counting_jpegs(paths, indices, max_pixels):
        calls["jpeg"] += len(paths)
        yield from jpeg_checks(paths, indices, max_pixels)

    def counting_general(data, channels, max_pixels):
        calls["general"] += 1
        return check_image(data, channels, max_pixels)

    monkeypatch.setattr(checks, "_jpeg_checks", counting_jpegs)
    monkeypatch.setattr(checks, "check_image", counting_general)
    return calls


def images(split):
    return sorted(bytes(item) if isinstance(item, bytes) else open(item, "rb").read()
                  for item in (split.encoded if split.encoded is not None else split.paths))


def test_a_second_start_decodes_nothing_and_gives_the_same_split(tmp_path, counted, caplog):
    make_folder(tmp_path)
    caplog.set_level(logging.INFO, logger="mobilenets")
    first = load(tmp_path)
    # 9 JPEGs (one truncated) in the pipeline; the 8 PNGs, the GIF, the TIFF and the JPEG
    # TensorFlow refused by Pillow; the TIFF converted again for its PNG bytes.
    assert counted == {"jpeg": 9, "general": 8 + 1 + 1 + 1 + 1}
    assert "checking 19 of 19 image files" in caplog.text
    assert "skipped 1 image(s)" in caplog.text and "truncated.jpg" in caplog.text
    verdicts = list((checks.cache_folder() / "folder-checks").glob("*.tsv"))
    assert any(str(tmp_path.resolve()) in path.read_text() for path in verdicts)

    counted.update(jpeg=0, general=0)
    caplog.clear()
    second = load(tmp_path)
    assert counted == {"jpeg": 0, "general": 1}  # the TIFF's PNG bytes, made again
    assert "checking" not in caplog.text and "skipped 1 image(s)" in caplog.text
    for a, b in ((first.train, second.train), (first.eval, second.eval)):
        np.testing.assert_array_equal(a.labels, b.labels)
        assert images(a) == images(b)
    assert len(first.train) + len(first.eval) == 18


def test_a_changed_file_is_checked_again(tmp_path, counted):
    make_folder(tmp_path)
    load(tmp_path)
    counted.update(jpeg=0, general=0)
    broken = tmp_path / "train/a/1.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    data = load(tmp_path)
    assert counted == {"jpeg": 1, "general": 2}  # it, refused; the TIFF's bytes
    assert len(data.train) + len(data.eval) == 17


def test_the_pixel_limit_applies_to_remembered_verdicts(tmp_path, counted):
    make_folder(tmp_path)
    with pytest.raises(UserError, match="has no readable images"):
        load(tmp_path, max_pixels=479)  # every image is 24 x 20 = 480 pixels
    assert counted["jpeg"] == 9  # sizes read from the headers, nothing decoded above the limit
    counted.update(jpeg=0, general=0)
    data = load(tmp_path)  # a higher limit: the files found too large are checked now
    assert counted["jpeg"] == 8 and len(data.train) + len(data.eval) == 18
    counted.update(jpeg=0, general=0)
    with pytest.raises(UserError, match="has no readable images"):
        load(tmp_path, max_pixels=479)  # remembered as 480 pixels: refused, not decoded
    assert counted == {"jpeg": 0, "general": 0}


def test_a_killed_first_check_resumes_where_it_stopped(tmp_path, counted, monkeypatch):
    make_folder(tmp_path)
    monkeypatch.setattr(checks, "SAVE_EVERY_S", 0.0)
    general = checks.check_image
    # The general check runs on a thread pool: the kill is tied to a file, not to the order in
    # which the threads happen to call it.
    fourth = (tmp_path / "train/a/3.png").read_bytes()

    def dies_on_the_fourth(data, channels, max_pixels):
        if data == fourth:
            raise KeyboardInterrupt
        return general(data, channels, max_pixels)

    monkeypatch.setattr(checks, "check_image", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        load(tmp_path)
    monkeypatch.setattr(checks, "check_image", general)
    counted.update(jpeg=0, general=0)
    load(tmp_path)
    # Only what was not remembered: the JPEG left to the general check (truncated), the
    # fourth file of class a and those after it, and the TIFF's bytes.
    assert counted == {"jpeg": 1, "general": 2 + 4 + 2 + 1}


def test_a_folder_larger_than_the_cache_limit_streams_from_disk(tmp_path, monkeypatch):
    make_folder(tmp_path)
    read = []
    original = checks.pathlib.Path.read_bytes

    def reading(self):
        read.append(self.name)
        return original(self)

    load(tmp_path)  # checked and remembered
    monkeypatch.setattr(checks.pathlib.Path, "read_bytes", reading)
    data = load(tmp_path, max_cache_mb=0)
    assert data.train.paths is not None and data.train.encoded is None
    assert read == ["scan.tiff"]  # only to convert what TensorFlow cannot decode


def test_an_image_that_breaks_after_the_check_is_skipped_and_counted(tmp_path):
    make_folder(tmp_path)
    data = load(tmp_path, max_cache_mb=0)  # streamed: read at each use
    split = data.train
    victim = next(p for p in split.paths if isinstance(p, str) and p.endswith(".png"))
    with open(victim, "wb") as out:
        out.write(b"not an image any more")
    config = DataConfig(augment="flip")
    examples = pipeline.classifying(lambda label: tf.one_hot(label, 2))
    skipped = pipeline.Skipped()
    stream = pipeline.train_dataset(split, config, (16, 16, 3), examples, 1, seed=0,
                                    skipped=skipped)
    epochs = 3
    made = sum(1 for _ in stream.take(epochs * (len(split) - 1)))
    assert made == epochs * (len(split) - 1)
    # once an epoch; the prefetched stream may have reached the next epoch's, or not yet the
    # last one's
    assert epochs - 1 <= skipped.count() <= epochs + 1
