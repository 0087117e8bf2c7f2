"""One decoder: every image file the start-up check accepts decodes in training, evaluation and
calibration, whatever its format and the model's channels; bombs and mutated files are refused
with a message, never a traceback or a hang."""

import concurrent.futures
import io
import struct

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import pipeline
from mobilenets.data.decode import check_image, decode
from mobilenets.data.splits import Split
from mobilenets.errors import UserError

PIXELS = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


def encoded(mode, fmt):
    out = io.BytesIO()
    Image.fromarray(PIXELS).convert(mode).save(out, fmt)
    return out.getvalue()


# The files a user's folder holds that TensorFlow's decode_image(channels=1 or 3) refuses or
# Pillow alone reads (the list), beside the plain ones.
FORMATS = {
    "rgb.png": ("RGB", "PNG"), "gray.png": ("L", "PNG"), "alpha.png": ("LA", "PNG"),
    "rgba.png": ("RGBA", "PNG"), "palette.png": ("P", "PNG"), "rgb.jpg": ("RGB", "JPEG"),
    "gray.jpg": ("L", "JPEG"), "cmyk.jpg": ("CMYK", "JPEG"), "palette.gif": ("P", "GIF"),
    "gray8.bmp": ("L", "BMP"), "rgb24.bmp": ("RGB", "BMP"), "rgba32.bmp": ("RGBA", "BMP"),
    "bilevel.bmp": ("1", "BMP"), "rgb.webp": ("RGB", "WEBP"), "rgb.tiff": ("RGB", "TIFF"),
}


def pillow_pixels(data, channels):
    """What the file holds, as Pillow reads it, in the model's channels."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB" if channels == 3 else "L")).reshape(20, 30, -1)


@pytest.mark.parametrize("channels", [1, 3])
def test_every_format_in_a_folder_decodes_in_training_and_evaluation(tmp_path, channels):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for name, (mode, fmt) in FORMATS.items():
            (tmp_path / label / name).write_bytes(encoded(mode, fmt))
    config = DataConfig(source="folder", dir=str(tmp_path), validation_fraction=0.5,
                        corrupt_images="error")
    data = data_lib.load(config, channels=channels)
    assert len(data.train) + len(data.eval) == 2 * len(FORMATS)
    for split in (data.train, data.eval):
        images = [image.numpy() for image, _ in split.ordered(channels)]
        assert len(images) == len(split)
        assert {image.shape for image in images} == {(20, 30, channels)}
    # The streamed form (paths, converted files in memory) decodes the same images.
    streamed = data_lib.load(config.__class__(**{**config.__dict__, "cache": False}),
                             channels=channels)
    assert isinstance(streamed.train.paths[0], str)
    assert sum(isinstance(p, bytes) for p in streamed.train.paths) > 0
    for (a, _), (b, _) in zip(streamed.train.ordered(channels), data.train.ordered(channels)):
        np.testing.assert_array_equal(a, b)
    batch, _ = next(iter(pipeline.eval_dataset(data.eval, config, (16, 16, channels),
                                               pipeline.classifying(lambda label: label), 64)))
    assert batch.shape == (len(data.eval), 16, 16, channels)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decoded_pixels_are_the_images(name):
    """Lossless files decode to their pixels in RGB; gray models get
    tf.image.rgb_to_grayscale's luma of them (the weights folded into exported files), or the
    gray file's own values."""
    mode, fmt = FORMATS[name]
    data, outcome = check_image(encoded(mode, fmt), 3, 10**6)
    assert outcome == ("converted" if name in ("bilevel.bmp", "rgb.tiff") else "ok")
    rgb = decode(tf.constant(data), 3).numpy()
    gray = decode(tf.constant(data), 1).numpy()
    lossy = fmt in ("JPEG", "WEBP")
    tolerance = 8 if lossy else 0
    assert np.abs(rgb.astype(int) - pillow_pixels(data, 3)).max() <= tolerance
    if mode in ("L", "LA", "1"):
        expected_gray = rgb[..., :1]  # a gray file's values, replicated then taken back
    else:
        expected_gray = tf.image.rgb_to_grayscale(rgb).numpy()
    np.testing.assert_array_equal(gray, expected_gray)


def test_gray_file_keeps_its_values_for_both_channel_counts():
    data = encoded("L", "PNG")
    expected = np.asarray(Image.fromarray(PIXELS).convert("L"))
    np.testing.assert_array_equal(decode(tf.constant(data), 1).numpy()[..., 0], expected)
    np.testing.assert_array_equal(decode(tf.constant(data), 3).numpy(),
                                  np.repeat(expected[..., None], 3, axis=-1))


def gif_bomb(width=65535, height=65535):
    """A few bytes of GIF whose header claims width x height pixels (4.3 gigapixels)."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    image = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    return header + image + b"\x02\x02\x4c\x01\x00;"


def test_decompression_bombs_and_pixel_limit(tmp_path, caplog):
    assert check_image(gif_bomb(), 3, 89_478_485) == (None, "too large")
    assert check_image(encoded("RGB", "PNG"), 3, 599) == (None, "too large")
    assert check_image(encoded("RGB", "PNG"), 3, 600)[1] == "ok"
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        (tmp_path / label / "ok.png").write_bytes(encoded("RGB", "PNG"))
        (tmp_path / label / "ok2.png").write_bytes(encoded("RGB", "PNG"))
    (tmp_path / "a" / "bomb.gif").write_bytes(gif_bomb())
    config = DataConfig(source="folder", dir=str(tmp_path), validation_fraction=0.5)
    data = data_lib.load(config)
    assert len(data.train) + len(data.eval) == 4
    assert "skipped 1 image(s)" in caplog.text and "bomb.gif" in caplog.text
    assert "more than data.max_pixels = 89,478,485 pixels" in caplog.text
    with pytest.raises(UserError, match=r"bomb.gif is more than data.max_pixels"):
        data_lib.load(DataConfig(**{**config.__dict__, "corrupt_images": "error"}))


def test_a_folder_of_only_gifs_trains(tmp_path):
    """Once, a folder of only GIFs hung for ever (every image failed to decode in the
    endless stream) for a gray model."""
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            (tmp_path / label / f"{i}.gif").write_bytes(encoded("P", "GIF"))
    config = DataConfig(source="folder", dir=str(tmp_path), validation_fraction=0.34)
    data = data_lib.load(config, channels=1)
    stream = pipeline.train_dataset(data.train, config, (16, 16, 1),
                                    pipeline.classifying(lambda label: label), 4, seed=0)
    images, _ = next(iter(stream))
    assert images.shape == (4, 16, 16, 1)


SEEDS = [encoded("RGB", "PNG"), encoded("RGB", "JPEG"), encoded("P", "GIF"),
         encoded("RGB", "BMP"), encoded("L", "BMP"), encoded("1", "BMP")]


@st.composite
def mutated_files(draw):
    """A seed file with a few bytes overwritten, a span deleted or the tail cut off."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    kind = draw(st.sampled_from(["none", "cut", "delete"]))
    if kind == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif kind == "delete":
        start = draw(st.integers(0, len(data)))
        data = data[:start] + data[start + draw(st.integers(1, 64)):]
    return bytes(data)


_POOL = concurrent.futures.ThreadPoolExecutor(1)


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_files(), channels=st.sampled_from([1, 3]))
def test_mutated_files_are_refused_or_decode(data, channels):
    """Whatever the check returns decodes in the input pipeline; nothing raises or hangs."""
    kept, outcome = _POOL.submit(check_image, data, channels, 10**6).result(timeout=30)
    assert outcome in ("ok", "converted", "unreadable", "too large")
    if kept is None:
        return
    split = Split(labels=np.zeros(1, np.int64), encoded=np.array([kept], dtype=object))
    image, _ = _POOL.submit(lambda: next(iter(split.ordered(channels)))).result(timeout=30)
    assert image.shape[2] == channels and image.shape[0] > 0 and image.shape[1] > 0
