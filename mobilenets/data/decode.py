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


def decode(data, channels):
    """A uint8 image [H, W, channels] from encoded bytes (BMP, GIF's first frame, JPEG, PNG,
    WebP), any channel count converted as the exported model's RGB input will be: gray
    replicated to RGB, RGB to luma with tf.image.rgb_to_grayscale's weights, alpha dropped."""
    image = tf.io.decode_image(data, channels=0, expand_animations=False)
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
