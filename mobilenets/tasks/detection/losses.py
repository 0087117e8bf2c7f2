"""SSD's loss: smooth L1 on the box codes of the anchors matched to objects, plus a
classification term, both summed and divided by the number of matched anchors.

The classification term is softmax cross-entropy over background + classes with hard negative
mining (Liu et al. 2016: the background anchors of highest loss, 3 per matched anchor of the
image, count; torchvision's SSDLite does the same) or, with `focal=True`, the sigmoid focal
loss of every anchor (Lin et al. 2017, alpha 0.25, gamma 2) on the object classes.
"""

import tensorflow as tf


def ssd_loss(class_targets, box_targets, class_logits, box_codes, *, negatives_per_positive=3,
             focal=False):
    """The batch's loss from targets (`targets.assign`: [B, N] classes, [B, N, 4] codes) and
    the model's outputs ([B, N, classes + 1] logits, [B, N, 4] codes)."""
    class_targets = tf.cast(class_targets, tf.int32)
    positive = class_targets > 0
    positives = tf.maximum(tf.reduce_sum(tf.cast(positive, tf.float32)), 1.0)
    diff = tf.abs(tf.cast(box_codes, tf.float32) - tf.cast(box_targets, tf.float32))
    smooth_l1 = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff**2, diff - 0.5), axis=-1)
    localization = tf.reduce_sum(tf.where(positive, smooth_l1, 0.0))
    logits = tf.cast(class_logits, tf.float32)
    if focal:
        classification = tf.reduce_sum(focal_loss(class_targets, logits))
    else:
        classification = tf.reduce_sum(mined_cross_entropy(class_targets, logits,
                                                           negatives_per_positive))
    return (localization + classification) / positives


def mined_cross_entropy(class_targets, logits, negatives_per_positive):
    """Per-anchor softmax cross-entropy [B, N], zero except on matched anchors and on each
    image's `negatives_per_positive` x matched background anchors of highest loss."""
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(class_targets, logits)
    positive = class_targets > 0
    negative_loss = tf.where(positive, -1.0, loss)  # positives sort last
    rank = tf.argsort(tf.argsort(negative_loss, axis=1, direction="DESCENDING"), axis=1)
    keep = negatives_per_positive * tf.reduce_sum(tf.cast(positive, tf.int32), axis=1,
                                                  keepdims=True)
    hard = tf.logical_and(~positive, rank < keep)
    return tf.where(positive | hard, loss, 0.0)


def focal_loss(class_targets, logits, alpha=0.25, gamma=2.0):
    """Per-anchor sigmoid focal loss [B, N] over the object classes (the logits' first column,
    background, is not scored)."""
    classes = tf.shape(logits)[-1]
    labels = tf.one_hot(class_targets, classes)[..., 1:]
    logits = logits[..., 1:]
    p = tf.sigmoid(logits)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
    p_t = labels * p + (1 - labels) * (1 - p)
    alpha_t = labels * alpha + (1 - labels) * (1 - alpha)
    return tf.reduce_sum(alpha_t * (1 - p_t) ** gamma * ce, axis=-1)
