"""COCO's detection metrics with pycocotools (the metric every paper reports): mAP over IoU
0.5:0.95, mAP at IoU 0.5 and 0.75, and the AP of each class, from ground truth and detections
given as fractions of each image."""

import contextlib
import io

import numpy as np


def coco_map(truths, detections, sizes, class_names):
    """{"map", "map50", "map75", "per_class": {name: AP or None}} of `detections` against
    `truths`, one entry per image: truths (boxes [n, 4] fractions, classes [n]); detections
    (boxes [m, 4] fractions, scores [m], classes [m]); `sizes` (height, width) in pixels."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, ((boxes, classes), (found, scores, labels), (height, width)) in enumerate(
            zip(truths, detections, sizes, strict=True), 1):
        images.append({"id": image_id, "height": height, "width": width})
        for box, label in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(classes)):
            xywh = pixels(box, height, width)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": int(label) + 1, "bbox": xywh,
                                "area": xywh[2] * xywh[3], "iscrowd": 0})
        for box, score, label in zip(np.asarray(found).reshape(-1, 4), np.asarray(scores),
                                     np.asarray(labels)):
            results.append({"image_id": image_id, "category_id": int(label) + 1,
                            "bbox": pixels(box, height, width), "score": float(score)})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = COCO()
        truth.dataset = {"images": images, "annotations": annotations, "categories": categories}
        truth.createIndex()
        if not results:
            return {"map": 0.0, "map50": 0.0, "map75": 0.0,
                    "per_class": {name: None for name in class_names}}
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # precision: [IoU thresholds, recall points, classes, area ranges, max detections]
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {}
    for index, name in enumerate(class_names):
        values = precision[:, :, index]
        values = values[values > -1]  # -1: a class absent from the ground truth
        per_class[name] = float(values.mean()) if values.size else None
    return {"map": float(evaluation.stats[0]), "map50": float(evaluation.stats[1]),
            "map75": float(evaluation.stats[2]), "per_class": per_class}


def pixels(box, height, width):
    """[ymin, xmin, ymax, xmax] fractions -> COCO's [x, y, width, height] pixels."""
    ymin, xmin, ymax, xmax = (float(v) for v in box)
    return [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height]
