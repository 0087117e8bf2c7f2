"""TFLite latency, size and XNNPACK partitions: our exports next to keras.applications'.

    python benchmarks/tflite_latency.py [--part compare|families|papers|all] [--size 224]
                                        [--runs 50] [--json out.json]

Part 1 (`compare`): MobileNetV1, V2, V3 Large and V3 Small from keras.applications and from
mobilenets, with the same weights (random, He-scaled, BatchNorm statistics taken from real
Fashion-MNIST images; keras.applications' ImageNet weights cannot be downloaded here), so the
two compute the same function and only the graphs differ. keras.applications' files are made
the usual way (the TFLite converter, full-integer PTQ with int8 input and output); ours are
`mobilenets.export_tflite` files (uint8 pixels in, float probabilities out). Both are timed in
one process, interleaved, one model at a time.

Part 2 (`families`): every family of the zoo in every export mode, 1 and 2 threads.

Part 3 (`papers`): MobileNetV4 Conv-S/M/L and EfficientNet-Lite0-4 at their papers'
resolutions, float32 and int8, 1 thread.

Latency: LiteRT interpreter with its default XNNPACK delegate, batch 1, median and 90th
percentile of `--runs` invokes after 5 warm-up runs. Absolute times on a shared 2-core machine
are noisy: compare ratios taken in one run.
"""

import argparse
import contextlib
import io
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import provenance  # noqa: E402
import tensorflow as tf  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from keras import applications  # noqa: E402

from mobilenets import build_model, export_tflite, list_models  # noqa: E402
from mobilenets import data as data_lib  # noqa: E402
from mobilenets.config import DataConfig  # noqa: E402
from mobilenets.data import pipeline  # noqa: E402
from mobilenets.export.convert import MODES  # noqa: E402
from mobilenets.tflite.xnnpack import delegate_partitions  # noqa: E402
from tests.reference import copy_weights, randomize  # noqa: E402

# (our name, keras.applications constructor, its extra options). Its MobileNetV3s take pixels
# in [0, 255] and rescale them inside, as ours do; its V1 and V2 leave that to the app.
TWINS = [
    ("mobilenet_v1", applications.MobileNet, {}),
    ("mobilenet_v2", applications.MobileNetV2, {}),
    ("mobilenet_v3_large", applications.MobileNetV3Large, {"include_preprocessing": True}),
    ("mobilenet_v3_small", applications.MobileNetV3Small, {"include_preprocessing": True}),
]


def pixels(size, count):
    """`count` Fashion-MNIST images (bundled sample) as RGB pixels at size x size."""
    config = DataConfig(source="sample", full_test_set=False, crop_fraction=1.0)
    split = data_lib.load(config).eval
    return np.concatenate(list(pipeline.calibration_images(split, (size, size, 3), count)))


def calibration(images):
    def generate():
        for image in images:
            yield [image[None].astype(np.float32)]
    return generate


def keras_applications_int8(model, images):
    """The usual full-integer conversion: int8 input and output."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()):  # Keras prints the SavedModel it writes
        return converter.convert()


def keras_applications_float32(model):
    with contextlib.redirect_stdout(io.StringIO()):
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


class Timer:
    def __init__(self, content, threads):
        self.interpreter = Interpreter(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()[0]
        self.index = details["index"]
        self.input = np.zeros(details["shape"], details["dtype"])
        self.times = []

    def once(self):
        self.interpreter.set_tensor(self.index, self.input)
        start = time.perf_counter()
        self.interpreter.invoke()
        self.times.append(1000 * (time.perf_counter() - start))


def time_together(contents, threads, runs):
    """Median and p90 ms of each file, timed round-robin so drift hits them alike."""
    timers = [Timer(content, threads) for content in contents]
    for _ in range(5):
        for timer in timers:
            timer.once()
    for timer in timers:
        timer.times.clear()
    for _ in range(runs):
        for timer in timers:
            timer.once()
    return [(statistics.median(t.times), float(np.percentile(t.times, 90))) for t in timers]


def describe(content):
    partitions, outside = delegate_partitions(content)
    return {"size_mb": round(len(content) / 2**20, 2), "partitions": partitions,
            "ops_outside_xnnpack": sorted(set(outside))}


def compare(size, runs):
    images = pixels(size, 32)
    rng = np.random.default_rng(0)
    rows = []
    for name, constructor, options in TWINS:
        theirs = constructor(input_shape=(size, size, 3), weights=None, **options)
        inputs = images if options.get("include_preprocessing") else images / 127.5 - 1.0
        randomize(theirs, rng, inputs)
        ours = build_model(name, input_shape=(size, size, 3), include_preprocessing=True)
        copy_weights(theirs, ours)
        files = {
            ("ours", "float32"): export_tflite(ours, "float32"),
            ("ours", "int8"): export_tflite(ours, "int8", calibration(images)),
            ("keras.applications", "float32"): keras_applications_float32(theirs),
            ("keras.applications", "int8"): keras_applications_int8(theirs, inputs),
        }
        timed = time_together(list(files.values()), 1, runs)
        for (source, mode), content, (median, p90) in zip(files, files.values(), timed):
            rows.append({"model": name, "source": source, "mode": mode, "median_ms": median,
                         "p90_ms": p90, **describe(content)})
        print_compare(rows[-4:])
    return rows


def print_compare(rows):
    ms = {(r["source"], r["mode"]): r for r in rows}
    ours8, theirs8 = ms[("ours", "int8")], ms[("keras.applications", "int8")]
    ours32 = ms[("ours", "float32")]
    print(f"{rows[0]['model']:20s} int8 ours {ours8['median_ms']:6.2f} ms "
          f"({ours8['partitions']} partition(s)), keras.applications "
          f"{theirs8['median_ms']:6.2f} ms "
          f"({theirs8['partitions']}): ratio {ours8['median_ms'] / theirs8['median_ms']:.2f}; "
          f"ours int8/fp32 {ours8['median_ms'] / ours32['median_ms']:.2f}; "
          f"fp32 ours {ours32['median_ms']:.2f} vs "
          f"{ms[('keras.applications', 'float32')]['median_ms']:.2f} ms", flush=True)


def families(size, runs):
    images = pixels(size, 16)
    rng = np.random.default_rng(1)
    rows = []
    for name in list_models():
        model = build_model(name, input_shape=(size, size, 3), include_preprocessing=True)
        randomize(model, rng, images)
        contents = [export_tflite(model, mode, calibration(images)) for mode in MODES]
        for threads in (1, 2):
            for mode, content, (median, p90) in zip(MODES, contents,
                                                    time_together(contents, threads, runs)):
                rows.append({"model": name, "mode": mode, "threads": threads,
                             "median_ms": median, "p90_ms": p90, **describe(content)})
                row = rows[-1]
                print(f"{name:20s} {mode:14s} {threads} thread(s) {median:8.2f} ms median "
                      f"{p90:8.2f} p90 {row['size_mb']:7.2f} MB {row['partitions']} "
                      f"partition(s) {' '.join(row['ops_outside_xnnpack'])}", flush=True)
    return rows


# MobileNetV4 and EfficientNet-Lite at the resolutions their papers (and timm's weights) use.
PAPER_RESOLUTIONS = [
    ("mobilenet_v4", {"variant": "conv_small"}, 224),
    ("mobilenet_v4", {"variant": "conv_medium"}, 256),
    ("mobilenet_v4", {"variant": "conv_large"}, 384),
    ("mobilenet_v4", {"variant": "hybrid_medium"}, 256),
    ("mobilenet_v4", {"variant": "hybrid_large"}, 384),
    *[("efficientnet_lite", {"variant": f"lite{i}"}, size)
      for i, size in enumerate((224, 240, 260, 280, 300))],
]


def papers(runs, variants=None):
    """float32 and int8 latency (1 thread) of MobileNetV4 and EfficientNet-Lite at their
    papers' resolutions (those of `variants` only, if given), the two modes of one model timed
    together."""
    rng = np.random.default_rng(2)
    rows = []
    for name, options, size in PAPER_RESOLUTIONS:
        if variants and options["variant"] not in variants:
            continue
        images = pixels(size, 16)
        model = build_model(name, input_shape=(size, size, 3), include_preprocessing=True,
                            **options)
        randomize(model, rng, images)
        contents = [export_tflite(model, mode, calibration(images)) for mode in ("float32",
                                                                                  "int8")]
        timed = time_together(contents, 1, runs)
        for mode, content, (median, p90) in zip(("float32", "int8"), contents, timed):
            rows.append({"model": f"{name} {options['variant']}", "size": size, "mode": mode,
                         "threads": 1, "median_ms": median, "p90_ms": p90, **describe(content)})
        float_row, int8_row = rows[-2:]
        print(f"{float_row['model']:32s} {size} float32 {float_row['median_ms']:8.2f} ms, int8 "
              f"{int8_row['median_ms']:8.2f} ms ({int8_row['partitions']} partition(s)), "
              f"{int8_row['size_mb']} MB", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--part", choices=["compare", "families", "papers", "all"],
                        default="all")
    parser.add_argument("--variants", nargs="+", help="--part papers: these variants only "
                        "(e.g. hybrid_medium lite0)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    results = provenance.stamp()
    if args.part in ("compare", "all"):
        results["compare"] = compare(args.size, args.runs)
    if args.part in ("families", "all"):
        results["families"] = families(args.size, args.runs)
    if args.part in ("papers", "all"):
        results["papers"] = papers(args.runs, args.variants)
    if args.json:
        provenance.save(results, args.json)  # and its CSV and Markdown tables


if __name__ == "__main__":
    main()
