"""The classification task: scores on hand-made predictions, targets, and model checks."""

import numpy as np
import pytest

from mobilenets import tasks

CLASSES = ["cat", "dog", "bird"]


def test_scores_on_hand_made_predictions():
    probabilities = np.array([[0.7, 0.2, 0.1],   # cat, right
                              [0.1, 0.3, 0.6],   # dog, wrong (bird), dog second
                              [0.2, 0.5, 0.3],   # bird, wrong (dog), bird second
                              [0.1, 0.1, 0.8]])  # bird, right
    labels = np.array([0, 1, 2, 2])
    task = tasks.get("classification")
    metrics = task.scores(probabilities, np.eye(3)[labels], CLASSES)
    assert metrics["top1"] == 0.5 and metrics["images"] == 4
    assert metrics["top5"] == 1.0  # 3 classes: every label is in the top 3
    assert metrics["confusion_matrix"] == [[1, 0, 0], [0, 0, 1], [0, 1, 1]]
    assert metrics["per_class_accuracy"] == {"cat": 1.0, "dog": 0.0, "bird": 0.5}
    expected_loss = -np.mean(np.log([0.7, 0.3, 0.3, 0.8]))
    assert metrics["loss"] == pytest.approx(expected_loss)
    assert task.agreement(probabilities, probabilities[[0, 2, 2, 3]]) == 0.75


def test_targets_are_one_hot():
    import tensorflow as tf

    examples = tasks.get("classification").examples(None, 3)
    np.testing.assert_array_equal(examples.target(tf.constant(2)).numpy(), [0, 0, 1])
    np.testing.assert_array_equal(examples.truth(tf.constant(1)).numpy(), [0, 1, 0])


def test_a_model_that_does_not_fit_is_named():
    task = tasks.get("classification")
    assert task.check_model((None, 32, 32, 3), (None, 3), CLASSES) is None
    assert "predicts 10 classes but the data has 3" in task.check_model(
        (None, 32, 32, 3), (None, 10), CLASSES)
    assert "fixed size" in task.check_model((None, None, None, 3), (None, 3), CLASSES)
    assert "takes 4-channel images; expected 1 (gray) or 3 (RGB)" in task.check_model(
        (None, 32, 32, 4), (None, 3), CLASSES)
    assert "not class probabilities" in task.check_model((None, 32, 32, 3), (None, 4, 4, 3),
                                                        CLASSES)
    assert "not class probabilities" in task.check_model(
        (None, 32, 32, 3), [(None, 9, 4), (None, 9, 4)], CLASSES)
    with pytest.raises(ValueError, match="unknown task 'tracking'; valid: classification, "
                                         "detection, segmentation"):
        tasks.get("tracking")
