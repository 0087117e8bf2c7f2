"""The segmentation loss: per-pixel softmax cross-entropy over the labelled pixels (those of
`ignore_index` left out), averaged over them, as DeepLab trains; and the pixel accuracy training
logs."""

import tensorflow as tf

from mobilenets.data.mask_transforms import IGNORE_INDEX


def _labelled(masks, logits, ignore_index):
    """(integer masks [B, H, W], float 0/1 of the labelled pixels) of masks [B, H, W] or
    [B, H, W, 1]."""
    masks = tf.reshape(tf.cast(masks, tf.int32), tf.shape(logits)[:-1])
    return masks, tf.cast(masks != ignore_index, tf.float32)


def _pixel_sums(masks, logits, ignore_index):
    """(each image's cross-entropy summed over its labelled pixels [B], the labelled [B, H, W])."""
    masks, labelled = _labelled(masks, logits, ignore_index)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.where(labelled > 0, masks, 0), tf.cast(logits, tf.float32))
    return tf.reduce_sum(loss * labelled, axis=[1, 2]), labelled


def pixel_cross_entropy(masks, logits, ignore_index=IGNORE_INDEX):
    """Mean cross-entropy of `logits` [B, H, W, C] against integer `masks` [B, H, W] (or
    [B, H, W, 1]) over the labelled pixels; 0 when none is labelled."""
    sums, labelled = _pixel_sums(masks, logits, ignore_index)
    return tf.math.divide_no_nan(tf.reduce_sum(sums), tf.reduce_sum(labelled))


def keras_loss(ignore_index=IGNORE_INDEX):
    """`pixel_cross_entropy` as a Keras loss, for `compile`: per-image values whose mean over
    the batch (Keras' reduction) is the batch's mean over its labelled pixels."""
    def pixel_loss(y_true, y_pred):
        sums, labelled = _pixel_sums(y_true, y_pred, ignore_index)
        batch = tf.cast(tf.shape(sums)[0], tf.float32)
        return tf.math.divide_no_nan(sums * batch, tf.reduce_sum(labelled))
    return pixel_loss


def pixel_accuracy(y_true, y_pred, ignore_index=IGNORE_INDEX):
    """The fraction of an image's labelled pixels whose most likely class is the label (a
    Keras metric, averaged over the batches: what training logs)."""
    masks, labelled = _labelled(y_true, y_pred, ignore_index)
    right = tf.cast(tf.equal(masks, tf.argmax(y_pred, axis=-1, output_type=tf.int32)),
                    tf.float32) * labelled
    return tf.math.divide_no_nan(tf.reduce_sum(right, axis=[1, 2]),
                                 tf.reduce_sum(labelled, axis=[1, 2]))
