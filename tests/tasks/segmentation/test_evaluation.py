"""mIoU, per-class IoU and pixel accuracy on hand-made masks."""

import numpy as np
import pytest

from mobilenets.tasks.segmentation import evaluation


def test_scores_by_hand():
    labels = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 255],    # 255: ignored
                       [2, 2, 2, 2]])
    predicted = np.array([[0, 1, 1, 1],
                          [0, 0, 0, 2],
                          [2, 2, 2, 0]])
    matrix = evaluation.confusion(labels, predicted, 3)
    np.testing.assert_array_equal(matrix, [[3, 1, 0], [1, 2, 0], [1, 0, 3]])
    result = evaluation.scores(matrix, ["bg", "a", "b"])
    # IoU: bg 3 / (3 + 2 + 1) = 0.5; a 2 / (2 + 1 + 1) = 0.5; b 3 / (3 + 0 + 1) = 0.75
    assert result["per_class_iou"] == {"bg": 0.5, "a": 0.5, "b": 0.75}
    assert result["miou"] == pytest.approx((0.5 + 0.5 + 0.75) / 3)
    assert result["pixel_accuracy"] == pytest.approx(8 / 11) and result["pixels"] == 11


def test_absent_classes_do_not_count_and_bad_labels_are_named():
    matrix = evaluation.confusion(np.zeros((2, 2)), np.zeros((2, 2), int), 3)
    result = evaluation.scores(matrix, ["bg", "a", "b"])
    assert result["per_class_iou"] == {"bg": 1.0, "a": None, "b": None}
    assert result["miou"] == 1.0
    with pytest.raises(ValueError, match=r"labels outside 0..2 \(and 255, ignored\)"):
        evaluation.confusion(np.array([3]), np.array([0]), 3)
