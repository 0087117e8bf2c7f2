"""Running a model over a batched dataset: a Keras model, or a .tflite file (`tflite.runner`)."""

import numpy as np


def keras_outputs(model, dataset):
    """(outputs, targets) of a Keras model over a batched (images, targets) dataset, each
    concatenated over the batches.

    The model is called directly, not through `predict`, which under a multi-worker strategy
    is a collective step that every worker would have to join.
    """
    import tensorflow as tf

    predict = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    outputs, targets = [], []
    for images, target in dataset:
        outputs.append(np.asarray(predict(images)))
        targets.append(np.asarray(target))
    return np.concatenate(outputs), np.concatenate(targets)


def tflite_outputs(runner, dataset):
    """(outputs, targets) of a `TFLiteModel` over a batched (images, targets) dataset."""
    outputs, targets = [], []
    for images, target in dataset:
        outputs.append(runner(np.asarray(images)))
        targets.append(np.asarray(target))
    return np.concatenate(outputs), np.concatenate(targets)
