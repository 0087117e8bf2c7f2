"""The segmentation loss: per-pixel softmax cross-entropy over the labelled pixels (those of
`ignore_index` left out), averaged over them, as DeepLab trains."""

import tensorflow as tf

IGNORE_INDEX = 255


def pixel_cross_entropy(masks, logits, ignore_index=IGNORE_INDEX):
    """Mean cross-entropy of `logits` [B, H, W, C] against integer `masks` [B, H, W] (or
    [B, H, W, 1]) over the labelled pixels; 0 when none is labelled."""
    masks = tf.reshape(tf.cast(masks, tf.int32), tf.shape(logits)[:-1])
    labelled = masks != ignore_index
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.where(labelled, masks, 0),
                                                          tf.cast(logits, tf.float32))
    count = tf.reduce_sum(tf.cast(labelled, tf.float32))
    return tf.math.divide_no_nan(tf.reduce_sum(tf.where(labelled, loss, 0.0)), count)
