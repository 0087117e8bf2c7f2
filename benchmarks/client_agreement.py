"""`mobilenets predict` against MediaPipe Tasks' ImageClassifier on real photos: how often their
top-1 agrees and how far their top-1 scores are apart, for one .tflite classifier.

    python benchmarks/client_agreement.py --model FILE.tflite --photos DIR
                                          [--json results/client_agreement.json]

MediaPipe runs in the clients' virtualenv (scripts/client_venv.sh; its Python is
$MOBILENETS_CLIENTS_PYTHON, default /tmp/mobilenets-clients/bin/python), on every JPEG in DIR:
handed the pixels Pillow decodes (as `predict` reads a file), and decoding the files itself.
Beside `predict` (its `client_transform`, MediaPipe's resize reproduced), the resize it used
before (TensorFlow's bilinear resize to float, pixel centres aligned) is scored the same way.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import provenance  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from mobilenets.data.transforms import client_transform  # noqa: E402
from mobilenets.tflite.runner import TFLiteModel  # noqa: E402

CLASSIFY = ROOT / "tests" / "clients" / "classify.py"


def mediapipe(model, photos, pillow):
    python = os.environ.get("MOBILENETS_CLIENTS_PYTHON", "/tmp/mobilenets-clients/bin/python")
    done = subprocess.run([python, str(CLASSIFY), *(["--pillow"] if pillow else []),
                           str(model), *map(str, photos)], capture_output=True, text=True,
                          check=True)
    return [(found[0][0], found[0][2]) for found in json.loads(done.stdout.splitlines()[-1])]


def tensorflow_resize(image, shape):
    """The resize `client_transform` did before it reproduced MediaPipe's."""
    return tf.image.resize(tf.cast(image, tf.float32), shape[:2]).numpy()


def litert(model, photos, transform):
    runner = TFLiteModel(model)
    shape = tuple(int(d) for d in runner.input["shape"][1:])
    scores = []
    for path in photos:
        with Image.open(path) as opened:
            pixels = np.asarray(opened.convert("RGB"))
        scores.append(runner(np.asarray(transform(pixels, shape))[None])[0])
    return np.array(scores)


def compare(ours, theirs):
    """Agreement: MediaPipe's top-1 class is one of ours (int8 scores tie: classes of equal
    int8 logits have equal probabilities, and the two sort equals in their own order)."""
    top1 = np.array([index for index, _ in theirs])
    agree = ours[np.arange(len(ours)), top1] == ours.max(axis=1)
    difference = np.abs(np.array([score for _, score in theirs])
                        - ours[np.arange(len(ours)), top1])
    return {"agreement": round(float(agree.mean()), 4), "disagree": int((~agree).sum()),
            "max_top1_score_difference": round(float(difference.max()), 4),
            "mean_top1_score_difference": round(float(difference.mean()), 5)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a classifier's .tflite file")
    parser.add_argument("--photos", required=True, help="a folder of JPEG photos")
    parser.add_argument("--photos-origin", default="", help="where the photos come from")
    parser.add_argument("--model-origin", default="", help="how the model was made")
    parser.add_argument("--json", help="write the results here (and Markdown beside it)")
    args = parser.parse_args()
    photos = sorted(p for p in pathlib.Path(args.photos).rglob("*")
                    if p.suffix.lower() in (".jpg", ".jpeg"))
    results = provenance.stamp()
    sizes = [Image.open(p).size for p in photos]
    results["photos"] = {"count": len(photos), "origin": args.photos_origin,
                         "smallest": list(min(sizes, key=lambda s: s[0] * s[1])),
                         "largest": list(max(sizes, key=lambda s: s[0] * s[1]))}
    results["model"] = {"file": pathlib.Path(args.model).name, "origin": args.model_origin,
                        "input": [int(d) for d in TFLiteModel(args.model).input["shape"]]}
    rows = []
    for decoder, pillow in (("Pillow's pixels, handed to MediaPipe", True),
                            ("MediaPipe decoding the files itself", False)):
        theirs = mediapipe(args.model, photos, pillow)
        for name, transform in (("predict (client_transform)", client_transform),
                                ("before: TensorFlow's resize", tensorflow_resize)):
            row = {"mediapipe_fed": decoder, "ours": name,
                   **compare(litert(args.model, photos, transform), theirs)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    results["agreement"] = rows
    if args.json:
        provenance.save(results, args.json)


if __name__ == "__main__":
    main()
