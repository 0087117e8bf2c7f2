"""One decoder for image files: what the start-up check accepts is what training, evaluation
and calibration decode, byte for byte.

TensorFlow decodes the images in the input pipeline (`decode`). Its decoders refuse some files
that are valid images (1-bit BMPs, TIFFs, and channel counts a format's decoder does not
offer), so the check (`check_image`) decodes each file with `decode` itself, and a file that
TensorFlow refuses but Pillow reads is converted to PNG once, in memory, and used in that form.
Image sizes are read from the header first, so a decompression bomb is refused before any
pixel is decoded.
"""

import io

import numpy as np
import tensorflow as tf

# decode_and_crop_jpeg gets a crop's first and last column slightly wrong where the colour is
# subsampled: libjpeg's upsampling of the chroma has no neighbouring column there. Decoding
# this many columns more on each side and cutting them off gives exactly the whole image's
# pixels (tests/data/test_decode.py; 900 random crops of 300 ImageNet photos were equal,
# 72 of 600 differed without it).
JPEG_MARGIN = 4


def decode(data, channels):
    """A uint8 image [H, W, channels] from encoded bytes (BMP, GIF's first frame, JPEG, PNG,
    WebP), any channel count converted as the exported model's RGB input will be: gray
    replicated to RGB, RGB to luma with tf.image.rgb_to_grayscale's weights, alpha dropped."""
    return _channels(tf.io.decode_image(data, channels=0, expand_animations=False), channels)


def decode_window(data, channels, window):
    """The pixels of the window `window(height, width)` chooses ((top, left, window height,
    window width), int32 scalars) of the encoded image `data`, exactly as `decode(data)` then
    a slice gives them. A JPEG decodes only that window (its size read from its header,
    `tf.image.decode_and_crop_jpeg`); other formats decode whole."""
    def jpeg():
        size = tf.image.extract_jpeg_shape(data)
        top, left, height, width = window(size[0], size[1])
        first = tf.maximum(left - JPEG_MARGIN, 0)
        last = tf.minimum(left + width + JPEG_MARGIN, size[1])
        wider = tf.image.decode_and_crop_jpeg(data, tf.stack([top, first, height, last - first]),
                                              channels=0)
        return _channels(wider[:, left - first:left - first + width], channels)

    def other():
        image = decode(data, channels)
        size = tf.shape(image)
        top, left, height, width = window(size[0], size[1])
        return image[top:top + height, left:left + width]

    return tf.ensure_shape(tf.cond(tf.io.is_jpeg(data), jpeg, other), [None, None, channels])


def _channels(image, channels):
    """A decoded image of any channel count as `decode` gives it."""
    count = tf.shape(image)[-1]
    # 2 (gray + alpha) -> 1, 4 (RGBA) -> 3: the alpha channel is the last.
    image = image[..., :count - (1 - count % 2)]
    if channels == 3:
        image = tf.tile(image, [1, 1, 3 // tf.shape(image)[-1]])
    else:
        image = tf.cond(tf.shape(image)[-1] == 3,
                        lambda: tf.image.rgb_to_grayscale(tf.ensure_shape(image, [None, None, 3])),
                        lambda: image)
    return tf.ensure_shape(image, [None, None, channels])


def check_image(data, channels, max_pixels):
    """(bytes to train on or None, what happened): "ok", "converted" (TensorFlow cannot decode
    the file, Pillow's PNG of it is used), "too large" (more than `max_pixels` pixels, read
    from the header) or "unreadable" (neither library decodes it whole)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                return None, "too large"
    except Image.DecompressionBombError:
        return None, "too large"
    except (OSError, SyntaxError, ValueError):
        return None, "unreadable"
    if _decodes(data, channels):
        return data, "ok"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            converted = image.convert("RGB" if channels == 3 else "L")
        out = io.BytesIO()
        converted.save(out, "PNG")
    except (OSError, SyntaxError, ValueError, EOFError):
        return None, "unreadable"
    return out.getvalue(), "converted"


def _decodes(data, channels):
    try:
        image = decode(tf.constant(data), channels)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, ValueError):
        return False
    return bool(np.all(tf.shape(image).numpy()[:2] > 0))
