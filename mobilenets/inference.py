"""Running a model over a batched dataset: a Keras model through its task's `predictions`, or a
.tflite file (`tflite.runner`)."""

import numpy as np


def keras_outputs(predict, dataset):
    """(outputs, targets) of `predict` (a task's `predictions(model)`: images -> an array, or
    a tuple of arrays) over a batched (images, targets) dataset, each concatenated over the
    batches.

    The model is called directly, not through `predict`, which under a multi-worker strategy
    is a collective step that every worker would have to join.
    """
    outputs, targets = [], []
    for images, target in dataset:
        outputs.append(predict(images))
        targets.append(np.asarray(target))
    return joined(outputs), np.concatenate(targets)


def tflite_outputs(runner, dataset, form=None):
    """(outputs, targets) of a `TFLiteModel` over a batched (images, targets) dataset, each
    batch's outputs put in `form` if given (a task's `file_outputs`)."""
    outputs, targets = [], []
    for images, target in dataset:
        batch = runner(np.asarray(images))
        outputs.append(batch if form is None else form(batch))
        targets.append(np.asarray(target))
    return joined(outputs), np.concatenate(targets)


def joined(batches):
    """Batches of outputs (arrays, or tuples of arrays) concatenated along the batch."""
    if isinstance(batches[0], (tuple, list)):
        return tuple(np.concatenate([np.asarray(b[i]) for b in batches])
                     for i in range(len(batches[0])))
    return np.concatenate([np.asarray(b) for b in batches])
