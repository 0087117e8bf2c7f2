"""Runs MediaPipe Tasks' ImageClassifier, as an Android app does, on image files.

    python classify.py [--pillow] MODEL IMAGE... -> JSON: for each image, [[index, label,
score], ...] (top 3, best first). MediaPipe decodes the files itself, or, with --pillow, is
handed the RGB pixels Pillow decodes (as `mobilenets predict` reads them: the same pixels, so
that only what MediaPipe does with them differs). Run in the clients' virtualenv
(requirements.txt), not the project's.
"""

import json
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def image(path, pillow):
    """The image file as an RGB mp.Image: decoded by MediaPipe (a gray file's pixels then given
    as RGB, as an app hands over a bitmap: the classifier refuses GRAY8), or by Pillow."""
    if not pillow:
        decoded = mp.Image.create_from_file(path)
        if decoded.image_format != mp.ImageFormat.GRAY8:
            return decoded
        pixels = np.repeat(decoded.numpy_view().reshape(decoded.height, decoded.width, 1), 3, 2)
    else:
        from PIL import Image

        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("RGB"))
    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(pixels))


def main():
    pillow = sys.argv[1] == "--pillow"
    model, images = sys.argv[1 + pillow], sys.argv[2 + pillow:]
    options = vision.ImageClassifierOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), max_results=3)
    results = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            categories = classifier.classify(image(path, pillow))
            results.append([[c.index, c.category_name, c.score]
                            for c in categories.classifications[0].categories])
    print(json.dumps(results))


if __name__ == "__main__":
    main()
