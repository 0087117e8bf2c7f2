"""Runs the TFLite Task Library (tflite-support's Python task API), as an Android app does, on
image files.

    python task_library.py classify MODEL IMAGE... -> JSON: for each image, [[index, label,
        score], ...] (top 3, best first);
    python task_library.py detect MODEL IMAGE... -> JSON: for each image, its detections as
        [x, y, width, height (pixels), index, label, score];
    python task_library.py segment MODEL IMAGE... -> JSON: for each image, its category mask
        (class index per pixel, rows) and the labels it read.
Run in the clients' virtualenv (requirements.txt), not the project's.
"""

import json
import sys

from tflite_support.task import core, processor, vision


def main():
    kind, model, images = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = core.BaseOptions(file_name=model)
    results = []
    if kind == "classify":
        task = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
            base_options=base, classification_options=processor.ClassificationOptions(
                max_results=3)))
        for path in images:
            found = task.classify(vision.TensorImage.create_from_file(path))
            results.append([[c.index, c.category_name, c.score]
                            for c in found.classifications[0].categories])
    elif kind == "detect":
        task = vision.ObjectDetector.create_from_options(vision.ObjectDetectorOptions(
            base_options=base, detection_options=processor.DetectionOptions(
                max_results=100, score_threshold=0.0)))
        for path in images:
            found = task.detect(vision.TensorImage.create_from_file(path))
            results.append([[d.bounding_box.origin_x, d.bounding_box.origin_y,
                             d.bounding_box.width, d.bounding_box.height,
                             d.categories[0].index, d.categories[0].category_name,
                             d.categories[0].score] for d in found.detections])
    else:
        task = vision.ImageSegmenter.create_from_options(vision.ImageSegmenterOptions(
            base_options=base, segmentation_options=processor.SegmentationOptions(
                output_type=processor.OutputType.CATEGORY_MASK)))
        for path in images:
            found = task.segment(vision.TensorImage.create_from_file(path))
            segmentation = found.segmentations[0]
            results.append({"mask": segmentation.category_mask.tolist(),
                            "labels": [c.category_name
                                       for c in segmentation.colored_labels]})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
