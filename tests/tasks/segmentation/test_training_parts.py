"""The segmentation loss with its ignore label, and the mask-aware augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from mobilenets.data import mask_transforms
from mobilenets.tasks.segmentation import losses


def test_loss_leaves_out_the_ignored_pixels():
    logits = np.array([[[[2.0, 0.0], [0.0, 1.0]],
                        [[0.5, 0.5], [3.0, -1.0]]]], np.float32)  # 1 x 2 x 2 pixels x 2 classes
    masks = np.array([[[0, 1], [255, 1]]])

    def ce(z, label):
        return -(z[label] - np.log(np.exp(z).sum()))

    expected = (ce(logits[0, 0, 0], 0) + ce(logits[0, 0, 1], 1) + ce(logits[0, 1, 1], 1)) / 3
    assert float(losses.pixel_cross_entropy(masks, logits)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.pixel_cross_entropy(np.full((1, 2, 2), 255), logits)) == 0.0


def test_image_and_mask_move_together():
    """A mask made of the image's own pixel classes (value // 64): after scale, crop and flip,
    every labelled pixel still carries the class of the image pixel under it, except along
    region edges where bilinear resizing blends; padded pixels are ignored and black."""
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 4, (6, 8))
    image = np.kron(blocks, np.ones((10, 10)))[..., None] * 64.0 + 20.0  # 60 x 80, 4 levels
    mask = (image // 64).astype(np.int32)
    for seed in range(8):
        out_image, out_mask = mask_transforms.scale_crop_flip(
            tf.constant(image), tf.constant(mask), tf.constant([seed, 0], tf.int64), (48, 48))
        out_image, out_mask = out_image.numpy()[..., 0], out_mask.numpy()[..., 0]
        assert out_image.shape == out_mask.shape == (48, 48)
        labelled = out_mask != 255
        agree = (np.floor(out_image[labelled] / 64) == out_mask[labelled]).mean()
        assert agree > 0.9
        assert set(np.unique(out_mask)) <= {0, 1, 2, 3, 255}
        assert (out_image[~labelled] == 0).all()
