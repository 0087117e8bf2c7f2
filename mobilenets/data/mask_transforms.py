"""Mask-aware augmentation for segmentation, seeded like the classification transforms: the
image and its mask of class indices go through the same random scale, crop and flip; the image
is resized bilinearly and the mask by nearest neighbour (class indices are not averaged), and
pixels the crop pads become `ignore_index` in the mask (DeepLab's recipe: scale 0.5-2.0, crop,
flip).

Both start from the image resized whole to the model's input, as evaluation and Android's
clients see it, so the random scale is relative to the size objects have there.
"""

import tensorflow as tf

from mobilenets.data.transforms import whole

IGNORE_INDEX = 255  # a mask's unlabelled pixels (VOC's object borders): no loss, no score


def augment(image, mask, seed, shape, config):
    """Training's augmentation of a uint8 image and its mask ([h, w, 1] class indices), as
    `data.augment` says: inception and flip_crop are `scale_crop_flip`, flip a flip alone,
    none nothing. Returns (float image of `shape`, int32 mask [height, width, 1])."""
    image, mask = whole(image, shape), resize_mask(mask, shape)
    if config.augment in ("inception", "flip_crop"):
        return scale_crop_flip(image, mask, seed, shape[:2])
    if config.augment == "flip":
        both = tf.concat([image, tf.cast(mask, tf.float32)], axis=-1)
        both = tf.image.stateless_random_flip_left_right(both, seed)
        return both[..., :-1], tf.cast(tf.round(both[..., -1:]), tf.int32)
    return image, mask


def resize_mask(mask, shape):
    """`mask` ([h, w, 1] class indices) at the input's height x width, by nearest neighbour,
    int32."""
    return tf.image.resize(tf.cast(mask, tf.int32), shape[:2], method="nearest")


def scale_crop_flip(image, mask, seed, size, scale_range=(0.5, 2.0), ignore_index=IGNORE_INDEX,
                    fill=0.0):
    """(image [h, w, c] float, mask [h, w, 1] int32) of `size` (height, width): the pair scaled
    by a factor drawn uniformly from `scale_range`, padded to at least `size` (image with
    `fill`, mask with `ignore_index`), cropped at a random place and flipped left to right half
    the time, all seeded by `seed` ([2] int)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    height, width = size
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    factor = tf.random.stateless_uniform([], seeds[0], *scale_range)
    scaled = tf.cast(tf.round(shape * factor), tf.int32)
    image = tf.image.resize(tf.cast(image, tf.float32), scaled)
    mask = tf.image.resize(tf.cast(mask, tf.int32), scaled, method="nearest")
    padded = tf.maximum(scaled, [height, width])
    image = pad_to(image - fill, padded) + fill
    mask = pad_to(mask - ignore_index, padded) + ignore_index
    both = tf.concat([image, tf.cast(mask, tf.float32)], axis=-1)
    both = tf.image.stateless_random_crop(both, [height, width, tf.shape(both)[-1]], seeds[1])
    both = tf.image.stateless_random_flip_left_right(both, seeds[2])
    return both[..., :-1], tf.cast(tf.round(both[..., -1:]), tf.int32)


def pad_to(tensor, size):
    """`tensor` zero-padded at the bottom and right to `size` (height, width)."""
    extra = size - tf.shape(tensor)[:2]
    return tf.pad(tensor, [[0, extra[0]], [0, extra[1]], [0, 0]])
