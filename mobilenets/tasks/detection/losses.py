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
    positive = tf.cast(class_targets > 0, tf.float32)
    positives = tf.maximum(tf.reduce_sum(positive), 1.0)
    localization = localization_sums(box_targets, positive, box_codes)
    classification = classification_sums(class_targets, class_logits, negatives_per_positive,
                                         focal)
    return tf.reduce_sum(localization + classification) / positives


def localization_sums(box_targets, positive, box_codes):
    """Each image's smooth L1 loss [B] summed over its matched anchors (`positive` [B, N])."""
    diff = tf.abs(tf.cast(box_codes, tf.float32) - tf.cast(box_targets, tf.float32))
    smooth_l1 = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff**2, diff - 0.5), axis=-1)
    return tf.reduce_sum(smooth_l1 * positive, axis=1)


def classification_sums(class_targets, class_logits, negatives_per_positive, focal):
    """Each image's classification loss [B]: hard-mined cross-entropy or the focal loss."""
    logits = tf.cast(class_logits, tf.float32)
    if focal:
        return tf.reduce_sum(focal_loss(class_targets, logits), axis=1)
    return tf.reduce_sum(mined_cross_entropy(class_targets, logits, negatives_per_positive),
                         axis=1)


def keras_losses(*, negatives_per_positive=3, focal=False):
    """`ssd_loss` as a loss per output of SSDLite, for `compile`: {"boxes": ..., "classes":
    ...}. The `boxes` target is [B, N, 5]: the codes and 1.0 on matched anchors (what the
    localization term needs of the classes). Each returns per-image values whose mean over the
    batch (Keras' reduction) is its term of `ssd_loss`: the batch's sum over its matched
    anchors."""
    def scale(sums, positive):  # mean over the batch of these = sum / matched anchors
        batch = tf.cast(tf.shape(sums)[0], tf.float32)
        return sums * batch / tf.maximum(tf.reduce_sum(positive), 1.0)

    def boxes(y_true, y_pred):
        y_true = tf.cast(y_true, tf.float32)
        positive = y_true[..., 4]
        return scale(localization_sums(y_true[..., :4], positive, y_pred), positive)

    def classes(y_true, y_pred):
        class_targets = tf.cast(tf.reshape(y_true, tf.shape(y_pred)[:2]), tf.int32)
        positive = tf.cast(class_targets > 0, tf.float32)
        return scale(classification_sums(class_targets, y_pred, negatives_per_positive, focal),
                     positive)

    return {"boxes": boxes, "classes": classes}


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
