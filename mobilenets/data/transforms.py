"""Preprocessing of one image: training augmentation (seeded, stateless) and evaluation resize.

An image comes in as uint8 pixels, or as its encoded bytes (a scalar string): then the crops
decode only the window they keep (a JPEG's, `decode.decode_window`), and nothing is converted to
float before it is cropped. Images leave as float32 pixels in [0, 255]; normalization is inside
the model.
"""

import tensorflow as tf

from mobilenets.data import augment
from mobilenets.data.decode import decode, decode_window


def convert_channels(image, channels):
    """Gray to RGB or RGB to gray, for arrays whose channel count is known statically."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


def pixels(image, channels):
    """uint8 pixels of `image`: decoded if it is encoded bytes."""
    return decode(image, channels) if image.dtype == tf.string else image


def window(image, channels, choose):
    """The uint8 window `choose(height, width)` -> (top, left, height, width) of `image`
    (pixels, or encoded bytes of which only that window is decoded where the format allows)."""
    if image.dtype == tf.string:
        return decode_window(image, channels, choose)
    size = tf.shape(image)
    top, left, height, width = choose(size[0], size[1])
    return image[top:top + height, left:left + width]


def _fit(image, height, width, small_images):
    """Float pixels resized to (height, width), or zero-padded if they are not larger
    ("pad")."""
    if small_images == "pad":
        shape = tf.shape(image)
        fits = tf.logical_and(shape[0] <= height, shape[1] <= width)
        return tf.cond(fits,
                       lambda: tf.cast(tf.image.resize_with_crop_or_pad(image, height, width),
                                       tf.float32),
                       lambda: tf.image.resize(image, (height, width)))
    return tf.image.resize(image, (height, width))


def train_transform(image, seed, shape, config, rand_augment_ops=None):
    """Augments one image (uint8 pixels or encoded bytes) with stateless ops seeded by `seed`
    (a [2] int tensor); RandAugment with `rand_augment_ops` (`augment.rand_augment_ops`) when
    the config asks. The inception crop is sampled from the image's size, cut (a JPEG: decoded)
    in uint8 and resized once."""
    height, width, channels = shape
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if config.augment == "inception":
        def crop(image_height, image_width):
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                tf.stack([image_height, image_width, channels]), tf.zeros([1, 0, 4]),
                seed=seeds[0], min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
                area_range=(config.min_crop_area, 1.0), max_attempts=10,
                use_image_if_no_bounding_boxes=True)
            return begin[0], begin[1], size[0], size[1]

        image = tf.image.resize(window(image, channels, crop), (height, width))
    else:
        image = _fit(pixels(image, channels), height, width, config.small_images)
        if config.augment == "flip_crop":
            pad = config.crop_padding or max(1, height // 8)
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(image, (height, width, shape[2]), seeds[0])
    if config.augment != "none":
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if config.randaugment_ops:  # after the crop and flip, before erasing: as timm
        image = augment.rand_augment(tf.ensure_shape(image, shape),
                                     tf.random.experimental.stateless_fold_in(seed, 3),
                                     rand_augment_ops, config.randaugment_ops)
    if config.erase_probability > 0:
        image = random_erase(image, seeds[2], config.erase_probability)
    # In [0, 255] without a clip: bilinear resizing interpolates between pixels, padding adds
    # zeros, erasing draws noise below 255 and RandAugment clips its own results.
    return tf.ensure_shape(image, shape)


def random_erase(image, seed, probability, area_range=(0.02, 0.4), min_aspect=0.3):
    """Random erasing (Zhong et al., 2017): with `probability`, a rectangle becomes noise.

    The rectangle covers a uniform `area_range` fraction of the image with a log-uniform aspect
    ratio in [min_aspect, 1 / min_aspect], clipped to the image, at a uniform position, and
    is filled with uniform noise in [0, 255]. keras.layers.RandomErasing does the same from a
    stateful seed generator; this one is seeded like the other ops here, so a resumed run
    erases the same rectangles.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    area = tf.cast(height * width, tf.float32)
    draw = tf.random.stateless_uniform([4], seeds[0])
    fraction = area_range[0] + (area_range[1] - area_range[0]) * draw[0]
    aspect = tf.exp(tf.math.log(min_aspect) * (2 * draw[1] - 1))
    erase_h = tf.minimum(height, tf.cast(tf.round(tf.sqrt(fraction * area * aspect)), tf.int32))
    erase_w = tf.minimum(width, tf.cast(tf.round(tf.sqrt(fraction * area / aspect)), tf.int32))
    top = tf.cast(draw[2] * tf.cast(height - erase_h + 1, tf.float32), tf.int32)
    left = tf.cast(draw[3] * tf.cast(width - erase_w + 1, tf.float32), tf.int32)
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]
    inside = (rows >= top) & (rows < top + erase_h) & (cols >= left) & (cols < left + erase_w)
    erase = tf.random.stateless_uniform([], seeds[1]) < probability
    noise = tf.random.stateless_uniform(tf.shape(image), seeds[2], maxval=255.0)
    return tf.where(inside & erase, noise, image)


def eval_transform(image, shape, config):
    """One image (uint8 pixels or encoded bytes) for evaluation: its central `crop_fraction` of
    each side (a JPEG decodes only that), resized to the input; or the whole image resized (or
    padded, `small_images: pad`)."""
    height, width, channels = shape
    if config.crop_fraction < 1.0 and config.small_images != "pad":
        fraction = config.crop_fraction

        def central(image_height, image_width):
            kept_height = tf.maximum(1, tf.cast(tf.round(
                fraction * tf.cast(image_height, tf.float32)), tf.int32))
            kept_width = tf.maximum(1, tf.cast(tf.round(
                fraction * tf.cast(image_width, tf.float32)), tf.int32))
            return ((image_height - kept_height) // 2, (image_width - kept_width) // 2,
                    kept_height, kept_width)

        image = tf.image.resize(window(image, channels, central), (height, width))
    else:
        image = _fit(pixels(image, channels), height, width, config.small_images)
    return tf.ensure_shape(image, shape)  # in [0, 255]: interpolated pixels, or zero padding


def client_transform(image, shape):
    """One uint8 image as Android's clients (MediaPipe Tasks; the TFLite Task Library) feed a
    model: the whole image resized to the input's height x width (aspect not kept, no crop) as
    `client_resize` does it, then the model's channels (gray from RGB by ITU-R 601 luma, on the
    resized pixels, as an exported file taking RGB computes it). Float32 out."""
    height, width, channels = shape
    resized = client_resize(tf.convert_to_tensor(image), height, width)
    return convert_channels(tf.cast(resized, tf.float32), channels)


def client_resize(image, height, width):
    """uint8 `image` [H, W, C] resized to [height, width, C] exactly as MediaPipe Tasks does it
    on the CPU (its ImageToTensorCalculator: `cv::warpPerspective` of the whole image onto the
    input, INTER_LINEAR, edges replicated). Output pixel (x, y) samples the image at
    (x * W / width, y * H / height): corners onto corners, not pixel centres onto centres, and
    no antialiasing however large the image; OpenCV's fixed-point bilinear rounds that position
    to 1/32 of a pixel and weighs the four neighbours in 1/32768, rounding the sum to uint8.

    Written here, not called from OpenCV: the python OpenCV of today (5.x) computes its warps
    in floating point and differs from MediaPipe's by 1-2 levels on about 7% of the pixels;
    this matches MediaPipe's output byte for byte (tests/export/test_android_clients.py)."""
    size = tf.shape(image)

    def positions(count, source):  # (pixel, 1/32 part) of each output pixel's sample
        step = tf.cast(source, tf.float64) / tf.cast(count, tf.float64)
        fixed = tf.cast(tf.round(tf.range(count, dtype=tf.float64) * step * 32), tf.int32)
        return fixed // 32, fixed % 32

    rows, row_parts = positions(height, size[0])
    cols, col_parts = positions(width, size[1])

    def pick(r, c):
        r = tf.clip_by_value(r, 0, size[0] - 1)
        c = tf.clip_by_value(c, 0, size[1] - 1)
        return tf.cast(tf.gather(tf.gather(image, r), c, axis=1), tf.int32)

    fy, fx = row_parts[:, None, None], col_parts[None, :, None]
    total = 32 * (pick(rows, cols) * (32 - fy) * (32 - fx) + pick(rows, cols + 1) * (32 - fy) * fx
                  + pick(rows + 1, cols) * fy * (32 - fx) + pick(rows + 1, cols + 1) * fy * fx)
    rounded = tf.bitwise.right_shift(total + (1 << 14), 15)
    return tf.cast(tf.clip_by_value(rounded, 0, 255), tf.uint8)


def whole(image, shape):
    """One uint8 image resized whole to the input (bilinear, float32 out) and to its channels:
    the training transforms' resize where the boxes or masks move with it."""
    height, width, channels = shape
    image = convert_channels(tf.convert_to_tensor(image), channels)
    return tf.image.resize(tf.cast(image, tf.float32), (height, width))
