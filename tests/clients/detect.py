"""Runs MediaPipe Tasks' ObjectDetector, as an Android app does, on image files.

    python detect.py MODEL IMAGE... -> JSON: for each image, its detections (best first) as
[x, y, width, height (pixels), index, label, score]. Run in the clients' virtualenv
(requirements.txt), not the project's.
"""

import json
import sys

import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def main():
    model, images = sys.argv[1], sys.argv[2:]
    options = vision.ObjectDetectorOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), score_threshold=0.0,
        max_results=100)
    results = []
    with vision.ObjectDetector.create_from_options(options) as detector:
        for path in images:
            found = detector.detect(mp.Image.create_from_file(path))
            results.append([[d.bounding_box.origin_x, d.bounding_box.origin_y,
                             d.bounding_box.width, d.bounding_box.height,
                             d.categories[0].index, d.categories[0].category_name,
                             d.categories[0].score] for d in found.detections])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
