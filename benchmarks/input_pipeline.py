"""The input pipeline on real photos, against a reference written after TF Model Garden's
ImageNet preprocessing, in one process, in alternating rounds.

    python benchmarks/input_pipeline.py --photos DIR [--size 224] [--images 2000] [--rounds 5]
                                        [--json results/input_pipeline.json]

DIR holds JPEG photos (any layout; for instance a public repository of ImageNet sample images,
not committed here). Their encoded bytes are read into memory once; each contender then makes
`--images` preprocessed images per round from those bytes, batched by 64:
- training: ours is `pipeline.train_dataset` as `mobilenets train` builds it with
  `data.augment: inception` (the seeded, resumable stream; one-hot labels); the reference is
  Model Garden's `_parse_train_image`: `extract_jpeg_shape`, `sample_distorted_bounding_box`
  (min_object_covered 0.1, aspect 3/4-4/3, area 0.08-1, 10 attempts), `decode_and_crop_jpeg`,
  bilinear resize, random flip, mean/std normalization to float32;
- evaluation: ours is `pipeline.eval_dataset` (`data.crop_fraction` 0.875); the reference is
  Model Garden's `_parse_eval_image` (`center_crop_image_v2`: the central square of 0.875 of
  the shorter side, decoded alone, then resized) and the same normalization.
Each round times every contender in turn (the order alternating), after one warm-up batch;
the figures are the medians over rounds of images per second (wall clock) and milliseconds of
CPU time per image (the process's, all threads). The machine must be otherwise idle.
"""

import argparse
import json
import os
import pathlib
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
import provenance  # noqa: E402
import tensorflow as tf  # noqa: E402

from mobilenets.config import DataConfig  # noqa: E402
from mobilenets.data import pipeline  # noqa: E402
from mobilenets.data.splits import Split  # noqa: E402

BATCH = 64
CLASSES = 1000
# ImageNet's channel means and standard deviations on [0, 255], as Model Garden normalizes.
MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV = (0.229 * 255, 0.224 * 255, 0.225 * 255)


def photos(folder):
    """The encoded bytes of every JPEG under `folder` (sorted), with a label each (the index
    modulo CLASSES: labels do not change the work)."""
    paths = sorted(p for p in pathlib.Path(folder).rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg"))
    if not paths:
        raise SystemExit(f"--photos {folder}: no JPEG files")
    return [p.read_bytes() for p in paths]


def ours(encoded, size, training):
    split = Split(labels=np.arange(len(encoded)) % CLASSES,
                  encoded=np.array(encoded, dtype=object))
    examples = pipeline.classifying(lambda label: tf.one_hot(label, CLASSES))
    shape = (size, size, 3)
    if training:
        return pipeline.train_dataset(split, DataConfig(augment="inception"), shape, examples,
                                      BATCH, seed=0)
    return pipeline.eval_dataset(split, DataConfig(crop_fraction=0.875), shape, examples,
                                 BATCH).repeat()


def _normalize(image):
    return (tf.cast(image, tf.float32) - MEAN) / STDDEV


def reference_train(data, size):
    """Model Garden's training preprocessing of one JPEG (classification_input.py)."""
    shape = tf.image.extract_jpeg_shape(data)
    begin, crop, _ = tf.image.sample_distorted_bounding_box(
        shape, tf.zeros([1, 0, 4]), min_object_covered=0.1, aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0), max_attempts=10, use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], crop[0], crop[1]])
    image = tf.image.decode_and_crop_jpeg(data, window, channels=3)
    image = tf.image.resize(image, (size, size), method=tf.image.ResizeMethod.BILINEAR)
    image = tf.image.random_flip_left_right(tf.ensure_shape(image, (size, size, 3)))
    return _normalize(image)


def reference_eval(data, size, padding=32):
    """Model Garden's evaluation preprocessing of one JPEG (center_crop_image_v2)."""
    shape = tf.image.extract_jpeg_shape(data)
    side = tf.cast(size / (size + padding) * tf.cast(tf.minimum(shape[0], shape[1]), tf.float32),
                   tf.int32)
    window = tf.stack([(shape[0] - side + 1) // 2, (shape[1] - side + 1) // 2, side, side])
    image = tf.image.decode_and_crop_jpeg(data, window, channels=3)
    image = tf.image.resize(image, (size, size), method=tf.image.ResizeMethod.BILINEAR)
    return _normalize(tf.ensure_shape(image, (size, size, 3)))


def reference(encoded, size, training):
    labels = np.arange(len(encoded)) % CLASSES
    dataset = tf.data.Dataset.from_tensor_slices((np.array(encoded, dtype=object), labels))
    parse = reference_train if training else reference_eval
    dataset = dataset.shuffle(len(encoded)) if training else dataset
    dataset = dataset.repeat().map(lambda data, label: (parse(data, size),
                                                        tf.one_hot(label, CLASSES)),
                                   num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def timed(iterator, images):
    """(images per second, CPU milliseconds per image) of making `images` images."""
    cpu, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(images // BATCH):
        next(iterator)
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    made = images // BATCH * BATCH
    return made / wall, 1000 * used / made


def compare(encoded, size, images, rounds, training):
    streams = {"ours": iter(ours(encoded, size, training)),
               "reference (Model Garden)": iter(reference(encoded, size, training))}
    for stream in streams.values():
        next(stream)  # warm-up: tracing and the first decodes
    runs = {name: [] for name in streams}
    for round_ in range(rounds):
        order = list(streams) if round_ % 2 == 0 else list(reversed(streams))
        for name in order:
            runs[name].append(timed(streams[name], images))
    median = {name: {"images_per_s": round(statistics.median(r[0] for r in runs[name]), 1),
                     "cpu_ms_per_image": round(statistics.median(r[1] for r in runs[name]), 3)}
              for name in runs}
    ours_, theirs = median["ours"], median["reference (Model Garden)"]
    ratio = {"images_per_s": round(ours_["images_per_s"] / theirs["images_per_s"], 3),
             "cpu_per_image": round(theirs["cpu_ms_per_image"] / ours_["cpu_ms_per_image"], 3)}
    kind = "training (inception crop, flip)" if training else "evaluation (central crop)"
    print(f"{kind} at {size}: ours {ours_['images_per_s']:.0f} img/s, "
          f"{ours_['cpu_ms_per_image']:.2f} ms CPU; reference {theirs['images_per_s']:.0f} img/s, "
          f"{theirs['cpu_ms_per_image']:.2f} ms CPU; ours / reference {ratio['images_per_s']:.2f}x "
          f"img/s, {ratio['cpu_per_image']:.2f}x less CPU per image", flush=True)
    return {"part": kind, "size": size, "median": median, "ours_vs_reference": ratio,
            "rounds": {name: [[round(a, 1), round(b, 3)] for a, b in r]
                       for name, r in runs.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="a folder of JPEG photos")
    parser.add_argument("--photos-origin", default="",
                        help="where the photos come from, for the results file")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=2048, help="images per contender and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--parts", nargs="+", choices=["training", "evaluation"],
                        default=["training", "evaluation"])
    parser.add_argument("--json", help="write the results here (and CSV / Markdown beside it)")
    args = parser.parse_args()
    encoded = photos(args.photos)
    sizes = [tf.image.extract_jpeg_shape(data).numpy()[:2] for data in encoded]
    results = provenance.stamp()
    results["photos"] = {"count": len(encoded),
                         "megabytes": round(sum(map(len, encoded)) / 2**20, 1),
                         "smallest": [int(v) for v in min(sizes, key=lambda s: s[0] * s[1])],
                         "largest": [int(v) for v in max(sizes, key=lambda s: s[0] * s[1])],
                         "folder": pathlib.Path(args.photos).name, "origin": args.photos_origin}
    print(json.dumps(results), flush=True)
    results["pipelines"] = [compare(encoded, args.size, args.images, args.rounds,
                                    part == "training") for part in args.parts]
    if args.json:
        provenance.save(results, args.json)


if __name__ == "__main__":
    main()
