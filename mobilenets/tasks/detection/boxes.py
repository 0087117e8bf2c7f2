"""Box arithmetic: intersection over union, and the box coding SSD regresses (Faster R-CNN's,
with the TF Object Detection API's scales 10, 10, 5, 5, which TFLite_Detection_PostProcess
decodes with). Boxes are [ymin, xmin, ymax, xmax]; functions take tensors or arrays."""

import tensorflow as tf

SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, height, width
EPSILON = 1e-8


def centre_form(boxes):
    """[..., 4] corners -> (y centre, x centre, height, width)."""
    ymin, xmin, ymax, xmax = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)
    return (ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin


def encode(boxes, anchors):
    """The codes [..., 4] (ty, tx, th, tw) that `decode` turns back into `boxes`."""
    y, x, h, w = centre_form(boxes)
    ya, xa, ha, wa = centre_form(anchors)
    ha, wa, h, w = ha + EPSILON, wa + EPSILON, h + EPSILON, w + EPSILON
    return tf.stack([(y - ya) / ha * SCALES[0], (x - xa) / wa * SCALES[1],
                     tf.math.log(h / ha) * SCALES[2], tf.math.log(w / wa) * SCALES[3]], axis=-1)


def decode(codes, anchors):
    """Corner boxes [..., 4] from codes and their anchors."""
    ya, xa, ha, wa = centre_form(anchors)
    ty, tx, th, tw = tf.unstack(tf.cast(codes, tf.float32), axis=-1)
    y, x = ty / SCALES[0] * ha + ya, tx / SCALES[1] * wa + xa
    h, w = tf.exp(th / SCALES[2]) * ha, tf.exp(tw / SCALES[3]) * wa
    return tf.stack([y - h / 2, x - w / 2, y + h / 2, x + w / 2], axis=-1)


def iou(a, b):
    """Intersection over union of every box of `a` [A, 4] with every box of `b` [B, 4]."""
    a, b = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    top = tf.maximum(a[:, None, 0], b[None, :, 0])
    left = tf.maximum(a[:, None, 1], b[None, :, 1])
    bottom = tf.minimum(a[:, None, 2], b[None, :, 2])
    right = tf.minimum(a[:, None, 3], b[None, :, 3])
    inter = tf.maximum(bottom - top, 0.0) * tf.maximum(right - left, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return tf.math.divide_no_nan(inter, union)
