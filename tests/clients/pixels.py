"""What MediaPipe Tasks' ImageClassifier feeds a model: run a "probe" file whose class scores
are the uint8 pixels of its input (made by tests/export/test_android_clients.py) on image files.

    python pixels.py PROBE HEIGHT WIDTH IMAGE... -> JSON: for each image, its input's pixels
(height x width x 3, row by row). Run in the clients' virtualenv (requirements.txt).
"""

import json
import sys

import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def main():
    probe, height, width, images = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    options = vision.ImageClassifierOptions(
        base_options=tasks.BaseOptions(model_asset_path=probe), max_results=-1)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            pixels = [0] * (height * width * 3)
            for category in classifier.classify(
                    mp.Image.create_from_file(path)).classifications[0].categories:
                pixels[category.index] = round(category.score)
            results.append(pixels)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
