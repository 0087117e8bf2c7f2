"""The JPEG fast path: a crop decodes only its window (`decode.decode_window`), and gives the
pixels that decoding the whole image and cutting the window gives, for every JPEG layout
(colour subsampled 4:2:0 or 4:2:2 or not, progressive, gray) and other formats; so the training and
evaluation transforms give the same images from encoded bytes as from decoded ones."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets.config import DataConfig
from mobilenets.data import transforms
from mobilenets.data.decode import decode, decode_window

rng = np.random.default_rng(0)


def photo(height, width, mode="RGB"):
    """A smooth random image (as photos are, so chroma subsampling matters) with noise."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    base = [np.sin(6 * (a * yy + b * xx) + c) for a, b, c in rng.uniform(0, 3, (3, 3))]
    pixels = np.clip(127 + 100 * np.stack(base, -1) + rng.normal(0, 20, (height, width, 3)),
                     0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    return image.convert("L") if mode == "L" else image


def encoded(image, fmt="JPEG", **options):
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


LAYOUTS = [("RGB", {"subsampling": 2}), ("RGB", {"subsampling": 1}),
           ("RGB", {"subsampling": 0}), ("L", {}), ("RGB", {"subsampling": 2,
                                                            "progressive": True})]


@pytest.mark.parametrize("mode, options", LAYOUTS)
@pytest.mark.parametrize("channels", [1, 3])
def test_a_jpeg_window_is_the_whole_decode_cut(mode, options, channels):
    height, width = 75, 131
    data = tf.constant(encoded(photo(height, width, mode), quality=90, **options))
    whole = decode(data, channels).numpy()
    for _ in range(40):
        h, w = rng.integers(1, height + 1), rng.integers(1, width + 1)
        top, left = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
        window = decode_window(data, channels, lambda *_: (tf.constant(top, tf.int32),
                                                           tf.constant(left, tf.int32),
                                                           tf.constant(h, tf.int32),
                                                           tf.constant(w, tf.int32)))
        np.testing.assert_array_equal(window.numpy(), whole[top:top + h, left:left + w])


def test_decode_and_crop_alone_is_not_exact_at_the_crop_edges():
    """Why decode_window decodes a margin: without it, where the colour is subsampled, the
    crop's first or last column differs from the whole decode (and only those)."""
    data = tf.constant(encoded(photo(64, 160), quality=90, subsampling=2))
    whole = tf.io.decode_jpeg(data).numpy()
    differing = set()
    for left in range(1, 40, 3):
        for width in (17, 33, 50):
            crop = tf.image.decode_and_crop_jpeg(data, [8, left, 40, width]).numpy()
            columns = np.flatnonzero((crop != whole[8:48, left:left + width]).any(axis=(0, 2)))
            differing |= {"first" if c == 0 else "last" if c == width - 1 else "inside"
                          for c in columns}
    assert "inside" not in differing and differing  # the edges differ somewhere, never inside


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
@pytest.mark.parametrize("config", [
    DataConfig(augment="inception"), DataConfig(augment="inception", min_crop_area=0.5),
    DataConfig(augment="flip_crop"), DataConfig(augment="flip")])
def test_training_from_encoded_bytes_equals_training_from_pixels(fmt, config):
    data = tf.constant(encoded(photo(90, 120), fmt))
    pixels = decode(data, 3)
    for position in range(10):
        seed = tf.constant([7, position], tf.int64)
        np.testing.assert_array_equal(
            transforms.train_transform(data, seed, (32, 32, 3), config).numpy(),
            transforms.train_transform(pixels, seed, (32, 32, 3), config).numpy())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("config", [DataConfig(crop_fraction=0.875), DataConfig(crop_fraction=1),
                                    DataConfig(small_images="pad")])
def test_evaluation_from_encoded_bytes_equals_evaluation_from_pixels(fmt, config):
    data = tf.constant(encoded(photo(61, 97), fmt))
    for channels in (1, 3):
        np.testing.assert_array_equal(
            transforms.eval_transform(data, (24, 24, channels), config).numpy(),
            transforms.eval_transform(decode(data, channels), (24, 24, channels),
                                      config).numpy())


def test_the_central_crop_keeps_the_central_fraction_of_each_side():
    ramp = tf.cast(tf.tile(tf.range(0, 200, 2)[None, :, None], (60, 1, 1)), tf.uint8)
    out = transforms.eval_transform(ramp, (30, 50, 1), DataConfig(crop_fraction=0.5)).numpy()
    # columns 25..74 of 100 kept (values 50..148), resized from 50 to 50 columns: unchanged
    np.testing.assert_array_equal(out[0, :, 0], np.arange(50, 150, 2))
