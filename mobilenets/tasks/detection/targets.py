"""Matching anchors to an image's objects: what each anchor is trained to predict.

As the TF Object Detection API's SSD configs (argmax matcher, threshold 0.5, forced matches):
each anchor takes the object it overlaps most if that IoU is at least `threshold`, and each
object also takes the anchor that overlaps it most, so that no object goes unmatched.
"""

import tensorflow as tf

from mobilenets.tasks.detection import boxes as box_ops


def assign(object_boxes, object_classes, anchors, threshold=0.5):
    """(class targets [N] int32: 0 background, c + 1 for class c; box codes [N, 4], zero for
    background anchors) for one image's `object_boxes` [G, 4] (corners, fractions) and
    `object_classes` [G] against `anchors` [N, 4]. G may be 0: every anchor is background."""
    object_boxes = tf.reshape(tf.cast(object_boxes, tf.float32), [-1, 4])
    object_classes = tf.reshape(tf.cast(object_classes, tf.int32), [-1])
    anchors = tf.convert_to_tensor(anchors, tf.float32)
    count = tf.shape(anchors)[0]

    def matched():
        overlaps = box_ops.iou(object_boxes, anchors)  # (G, N)
        best = tf.argmax(overlaps, axis=0, output_type=tf.int32)  # each anchor's object
        positive = tf.reduce_max(overlaps, axis=0) >= threshold
        forced = tf.argmax(overlaps, axis=1, output_type=tf.int32)  # each object's anchor
        objects = tf.range(tf.shape(object_boxes)[0])
        best = tf.tensor_scatter_nd_update(best, forced[:, None], objects)
        positive = tf.tensor_scatter_nd_update(positive, forced[:, None],
                                               tf.ones_like(forced, tf.bool))
        classes = tf.where(positive, tf.gather(object_classes, best) + 1, 0)
        codes = box_ops.encode(tf.gather(object_boxes, best), anchors)
        return classes, tf.where(positive[:, None], codes, 0.0)

    def empty():
        return tf.zeros([count], tf.int32), tf.zeros([count, 4], tf.float32)

    return tf.cond(tf.shape(object_boxes)[0] > 0, matched, empty)
