"""The augmentations of the MobileNetV3/V4 recipes: RandAugment on each image, MixUp and CutMix
on each batch, seeded by their position in the training stream like the rest of it.

Keras' preprocessing layers draw their randomness from a stateful `SeedGenerator`, whose state
a parallel tf.data map draws from in no fixed order and a resumed run starts afresh. Their
`get_random_transformation` also takes the generator to draw from, so each image (each batch)
gets a `PositionSeeds` made from its own stateless seed: the same image at the same position
is augmented alike in any run, from any step.
"""

import keras
import tensorflow as tf

FILL = 128.0  # what geometric ops fill the uncovered corners with: mid-gray, as timm


class PositionSeeds(keras.random.SeedGenerator):
    """A seed generator without state: the n-th seed drawn is `seed` folded with n (`seed` a
    [2] integer tensor). Keras' random ops accept any `SeedGenerator` and call only `next`."""

    def __init__(self, seed):  # no state variable (the base class's): nothing to save
        self.seed = seed
        self.draws = 0

    def next(self, ordered=True):
        self.draws += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.draws)


def rand_augment_ops(magnitude):
    """RandAugment's 14 operations (Cubuk et al., 2020; identity is `None`), each a Keras
    layer whose strength is drawn uniformly up to `magnitude` on timm's
    0-10 scale (10: rotate 30 degrees, shear 0.3, translate 45% of the side, contrast,
    colour and sharpness factors 1 +- 0.9, posterize to 4 bits).

    Not Keras' RandAugment layer: its strength scale rotates up to 180 degrees at its default
    0.5 (its factor is a fraction of a full turn) and it applies the same operations to a
    whole batch, where the paper chooses them per image."""
    r = magnitude / 10.0
    geometric = dict(fill_mode="constant", fill_value=FILL)
    ops = [
        None,  # identity
        keras.layers.AutoContrast(value_range=(0, 255)),
        keras.layers.Equalization(value_range=(0, 255)),
        keras.layers.RandomRotation(30.0 / 360.0 * r, **geometric),
        # Keras draws the threshold in [0, 255] whatever its factor's lower bound.
        keras.layers.Solarization(threshold_factor=1.0, value_range=(0, 255)),
        keras.layers.RandomColorDegeneration(0.9 * r, value_range=(0, 255)),
        keras.layers.RandomPosterization((8 - round(4 * r),) * 2, value_range=(0, 255)),
        keras.layers.RandomContrast(0.9 * r, value_range=(0, 255)),
        # Keras adds to the pixels where PIL multiplies them: 0.45 of the range is what a
        # +-0.9 factor does to mid-gray.
        keras.layers.RandomBrightness(0.45 * r, value_range=(0, 255)),
        keras.layers.RandomSharpness(0.9 * r, value_range=(0, 255)),
        keras.layers.RandomShear(x_factor=0.3 * r, y_factor=0.0, **geometric),
        keras.layers.RandomShear(x_factor=0.0, y_factor=0.3 * r, **geometric),
        keras.layers.RandomTranslation(0.0, 0.45 * r, **geometric),
        keras.layers.RandomTranslation(0.45 * r, 0.0, **geometric),
    ]
    return ops


def rand_augment(image, seed, ops, count):
    """`count` operations of `ops` (`rand_augment_ops`), each chosen uniformly per image,
    applied to one float [0, 255] image (height, width, 1 or 3) with seeds from `seed`."""
    channels = image.shape[-1]
    batch = tf.image.grayscale_to_rgb(image[None]) if channels == 1 else image[None]
    choices = tf.random.stateless_uniform([count], seed, 0, len(ops), dtype=tf.int32)

    def apply(op, op_seed):
        def run():
            if op is None:
                return batch
            change = op.get_random_transformation(batch, training=True,
                                                  seed=PositionSeeds(op_seed))
            return tf.clip_by_value(tf.cast(op.transform_images(batch, change), tf.float32),
                                    0.0, 255.0)
        return run

    for index in range(count):
        op_seed = tf.random.experimental.stateless_fold_in(seed, index + 1)
        batch = tf.ensure_shape(
            tf.switch_case(choices[index], [apply(op, op_seed) for op in ops]),
            [1, *image.shape[:2], 3])
    # A gray image stays gray: every operation treats R, G and B alike.
    return batch[0, ..., :1] if channels == 1 else batch[0]


class BatchMixer:
    """MixUp and / or CutMix of batches of images (float [0, 255]) and their one-hot (or
    smoothed) labels, as the data section `config` asks; with both, each batch gets one of
    the two at even odds (timm's switch probability 0.5); `mix_probability` of the batches are
    mixed. Made once per stream (Keras' MixUp layer cannot be made inside a tf.data
    function)."""

    def __init__(self, config):
        self.mixup = keras.layers.MixUp(alpha=config.mixup_alpha) if config.mixup_alpha else None
        self.cutmix_alpha = config.cutmix_alpha
        self.probability = config.mix_probability

    def __call__(self, images, labels, seed):
        """The batch mixed, or as it is for the (1 - mix_probability) of batches left alone."""
        if self.probability >= 1.0:
            return self.mix(images, labels, seed)
        mixed = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(
            seed, 1)) < self.probability
        return tf.cond(mixed, lambda: self.mix(images, labels, seed),
                       lambda: (images, labels))

    def mix(self, images, labels, seed):
        seeds = tf.random.experimental.stateless_split(seed, 3)
        if self.mixup and self.cutmix_alpha:
            use_cutmix = tf.random.stateless_uniform([], seeds[0]) < 0.5
            return tf.cond(use_cutmix,
                           lambda: cut_mix(images, labels, seeds[1], self.cutmix_alpha),
                           lambda: mix_up(images, labels, seeds[2], self.mixup))
        if self.cutmix_alpha:
            return cut_mix(images, labels, seeds[1], self.cutmix_alpha)
        return mix_up(images, labels, seeds[2], self.mixup)


def mix_up(images, labels, seed, layer):
    """MixUp (Zhang et al., 2018) with Keras' MixUp `layer`: each image blended with another
    of the batch by a Beta(alpha, alpha) weight, the labels alike."""
    change = layer.get_random_transformation({"images": images, "labels": labels},
                                             seed=PositionSeeds(seed))
    return (tf.cast(layer.transform_images(images, change), tf.float32),
            tf.cast(layer.transform_labels(labels, change), labels.dtype))


def cut_mix(images, labels, seed, alpha):
    """CutMix (Yun et al., 2019): a box of each image replaced by the same box of another
    image of the batch; the box covers 1 - lambda of the area for lambda ~ Beta(alpha,
    alpha), centred uniformly and clipped to the image; the labels mix by the pixels pasted.

    Not Keras' CutMix layer: it draws alpha itself uniformly below its factor rather than
    Beta(alpha, alpha) with the paper's fixed alpha, and weighs the labels by the box's
    real-valued area rather than by the whole pixels it pastes."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    shape = tf.shape(images)
    count, height, width = shape[0], shape[1], shape[2]
    first = tf.random.stateless_gamma([count], seeds[0], alpha)
    second = tf.random.stateless_gamma([count], seeds[1], alpha)
    lam = first / (first + second)
    side = tf.sqrt(1.0 - lam)
    centre = tf.random.stateless_uniform([count, 2], seeds[2])

    def span(size, centre):
        size = tf.cast(size, tf.float32)
        half = tf.round(size * side) / 2.0
        low = tf.clip_by_value(tf.round(centre * size - half), 0.0, size)
        high = tf.clip_by_value(tf.round(centre * size + half), 0.0, size)
        return tf.cast(low, tf.int32)[:, None], tf.cast(high, tf.int32)[:, None]

    top, bottom = span(height, centre[:, 0])
    left, right = span(width, centre[:, 1])
    rows = tf.range(height)[None, :]
    cols = tf.range(width)[None, :]
    in_rows = (rows >= top) & (rows < bottom)  # (count, height)
    in_cols = (cols >= left) & (cols < right)  # (count, width)
    box = in_rows[:, :, None] & in_cols[:, None, :]  # (count, height, width)
    partner = tf.argsort(tf.random.stateless_uniform([count], seeds[3]))
    images = tf.where(box[..., None], tf.gather(images, partner), images)
    pasted = tf.reduce_mean(tf.cast(box, labels.dtype), axis=[1, 2])[:, None]
    labels = (1.0 - pasted) * labels + pasted * tf.gather(labels, partner)
    return images, labels


def enabled(config):
    """Whether the data section mixes batches."""
    return config.mixup_alpha > 0 or config.cutmix_alpha > 0


def describe(config):
    """One line for the log, or None."""
    parts = []
    if config.randaugment_ops:
        parts.append(f"RandAugment {config.randaugment_ops} ops at magnitude "
                     f"{config.randaugment_magnitude:g}")
    if config.mixup_alpha:
        parts.append(f"MixUp alpha {config.mixup_alpha:g}")
    if config.cutmix_alpha:
        parts.append(f"CutMix alpha {config.cutmix_alpha:g}")
    if config.mixup_alpha and config.cutmix_alpha:
        parts.append("one of the two per batch")
    if enabled(config) and config.mix_probability < 1.0:
        parts.append(f"on {config.mix_probability:.0%} of the batches")
    return ", ".join(parts) or None

