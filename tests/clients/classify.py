"""Runs MediaPipe Tasks' ImageClassifier, as an Android app does, on image files.

    python classify.py MODEL IMAGE... -> JSON: for each image, [[index, label, score], ...]
(top 3, best first). Run in the clients' virtualenv (requirements.txt), not the project's.
"""

import json
import sys

import mediapipe as mp
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def main():
    model, images = sys.argv[1], sys.argv[2:]
    options = vision.ImageClassifierOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), max_results=3)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            categories = classifier.classify(mp.Image.create_from_file(path))
            results.append([[c.index, c.category_name, c.score]
                            for c in categories.classifications[0].categories])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
