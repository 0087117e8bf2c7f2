"""Segmentation metrics, as PASCAL VOC and DeepLab score them: a confusion matrix over every
labelled pixel of the split (pixels of `ignore_index`, VOC's 255 borders, left out), then
per-class IoU (true positives / (true + false positives + false negatives)), their mean over
the classes present in the labels or predictions (mIoU), and pixel accuracy."""

import numpy as np

from mobilenets.data.mask_transforms import IGNORE_INDEX


def confusion(labels, predictions, num_classes, ignore_index=IGNORE_INDEX):
    """[num_classes, num_classes] counts of (label, predicted class) over the labelled pixels
    of integer masks `labels` and `predictions` of one shape."""
    labels = np.asarray(labels).ravel()
    predictions = np.asarray(predictions).ravel()
    kept = labels != ignore_index
    if ((labels[kept] < 0) | (labels[kept] >= num_classes)).any():
        raise ValueError(f"labels outside 0..{num_classes - 1} (and {ignore_index}, ignored)")
    pairs = labels[kept].astype(np.int64) * num_classes + predictions[kept]
    return np.bincount(pairs, minlength=num_classes**2).reshape(num_classes, num_classes)


def scores(matrix, class_names):
    """{"miou", "pixel_accuracy", "per_class_iou": {name: IoU or None}, "pixels"} of a
    confusion matrix (`confusion`, summed over images); a class neither labelled nor predicted
    has no IoU and does not count in the mean."""
    matrix = np.asarray(matrix, np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    iou = {name: (float(true_positive[i] / union[i]) if union[i] else None)
           for i, name in enumerate(class_names)}
    present = [value for value in iou.values() if value is not None]
    total = matrix.sum()
    return {"miou": float(np.mean(present)) if present else 0.0,
            "pixel_accuracy": float(true_positive.sum() / total) if total else 0.0,
            "per_class_iou": iou, "pixels": int(total)}
