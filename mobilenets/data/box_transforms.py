"""Box-aware augmentation for detection, seeded like the classification transforms: SSD's
random crop, a horizontal flip, and the resize to the model's input; boxes ([ymin, xmin, ymax,
xmax] as fractions of the image) follow the pixels, are clipped to the crop, and an object
whose centre falls outside the crop is dropped (SSD's rule). An image without objects crops
like any other.
"""

import tensorflow as tf

from mobilenets.data.transforms import whole

# SSD's crops (Liu et al. 2016; TF's Object Detection API's ssd_random_crop): each must cover at
# least this fraction of some object (tf.image's min_object_covered), chosen at random; 0.0 is
# any crop, and one time in 8 the image is kept whole.
MIN_COVERED = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9)
KEEP_WHOLE = 1 / 8


def random_crop(image, boxes, classes, seed):
    """(image, boxes, classes) after SSD's random crop seeded by `seed` ([2] int)."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    covered = tf.gather(MIN_COVERED, tf.random.stateless_uniform(
        [], seeds[0], 0, len(MIN_COVERED), dtype=tf.int32))
    begin, size, window = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), tf.reshape(boxes, [1, -1, 4]), seed=seeds[1],
        min_object_covered=covered, aspect_ratio_range=(0.5, 2.0), area_range=(0.1, 1.0),
        max_attempts=50, use_image_if_no_bounding_boxes=True)
    whole = tf.random.stateless_uniform([], seeds[2]) < KEEP_WHOLE
    window = tf.where(whole, tf.constant([0.0, 0.0, 1.0, 1.0]), tf.reshape(window, [4]))
    begin = tf.where(whole, tf.zeros_like(begin), begin)
    size = tf.where(whole, tf.shape(image), size)
    cropped = tf.slice(image, begin, size)
    cropped.set_shape([None, None, image.shape[-1]])  # the channels stay known
    return (cropped, *crop_boxes(boxes, classes, window))


def crop_boxes(boxes, classes, window):
    """The objects of a crop `window` ([ymin, xmin, ymax, xmax] fractions): those whose centre
    lies inside it, clipped to it, in its fractions."""
    boxes = tf.reshape(tf.cast(boxes, tf.float32), [-1, 4])
    centre_y = (boxes[:, 0] + boxes[:, 2]) / 2
    centre_x = (boxes[:, 1] + boxes[:, 3]) / 2
    inside = ((centre_y > window[0]) & (centre_y < window[2]) & (centre_x > window[1])
              & (centre_x < window[3]))
    origin = tf.stack([window[0], window[1], window[0], window[1]])
    extent = tf.stack([window[2] - window[0], window[3] - window[1]] * 2)
    kept = tf.clip_by_value((tf.boolean_mask(boxes, inside) - origin) / extent, 0.0, 1.0)
    return kept, tf.boolean_mask(classes, inside)


def random_flip(image, boxes, seed):
    """(image, boxes) flipped left to right with probability 1/2."""
    flip = tf.random.stateless_uniform([], seed) < 0.5
    flipped = tf.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], axis=1)
    return (tf.where(flip, tf.image.flip_left_right(image), image),
            tf.where(flip, flipped, boxes))


def augment(image, objects, seed, shape, config):
    """Training's augmentation of one image and its `objects` ([most, 5] rows of box and
    class, padded with class -1; `splits.annotations`), as `data.augment` says: inception and
    flip_crop are SSD's random crop then a flip, flip a flip alone, none nothing; every choice
    but none adds a brightness / contrast jitter. Returns (float image of `shape`, objects
    padded as they came)."""
    most = objects.shape[0]
    valid = objects[:, 4] >= 0
    boxes, classes = tf.boolean_mask(objects[:, :4], valid), tf.boolean_mask(objects[:, 4], valid)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if config.augment in ("inception", "flip_crop"):
        image, boxes, classes = random_crop(image, boxes, classes, seeds[0])
    if config.augment != "none":
        image, boxes = random_flip(image, boxes, seeds[1])
    image = whole(image, shape)
    if config.augment != "none":
        image = jitter(image, seeds[2])
    rows = tf.concat([boxes, classes[:, None]], axis=1)
    rows = tf.pad(rows, [[0, most - tf.shape(rows)[0]], [0, 0]], constant_values=-1.0)
    return image, tf.ensure_shape(rows, [most, 5])


def jitter(image, seed, brightness=32.0, contrast=(0.5, 1.5)):
    """SSD's photometric distortion, its brightness and contrast: pixels ([0, 255]) shifted by
    up to +-`brightness` and their spread around the mean scaled within `contrast`."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    delta = tf.random.stateless_uniform([], seeds[0], -brightness, brightness)
    factor = tf.random.stateless_uniform([], seeds[1], *contrast)
    mean = tf.reduce_mean(image)
    return tf.clip_by_value((image - mean) * factor + mean + delta, 0.0, 255.0)
