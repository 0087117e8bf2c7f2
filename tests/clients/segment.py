"""Runs MediaPipe Tasks' ImageSegmenter, as an Android app does, on image files.

    python segment.py MODEL OUTPUT_DIR IMAGE... -> writes OUTPUT_DIR/<n>.npy, each image's
category mask (uint8 class index per pixel, at the image's size) and <n>.conf.npy, its
confidence masks [classes, H, W]; prints the labels MediaPipe read. Run in the clients'
virtualenv (requirements.txt), not the project's.
"""

import json
import pathlib
import sys

import mediapipe as mp
import numpy as np
from mediapipe.tasks import python as tasks
from mediapipe.tasks.python import vision


def main():
    model, output, images = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
    options = vision.ImageSegmenterOptions(
        base_options=tasks.BaseOptions(model_asset_path=model), output_category_mask=True,
        output_confidence_masks=True)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        for number, path in enumerate(images):
            result = segmenter.segment(mp.Image.create_from_file(path))
            np.save(output / f"{number}.npy", result.category_mask.numpy_view())
            np.save(output / f"{number}.conf.npy",
                    np.stack([m.numpy_view() for m in result.confidence_masks]))
        labels = segmenter.labels
    print(json.dumps(labels))


if __name__ == "__main__":
    main()
