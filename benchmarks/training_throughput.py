"""Training throughput and peak memory.

    python benchmarks/training_throughput.py [--sizes 160 224] [--steps 30] [--rounds 3]
                                             [--bfloat16] [--mixed-float16] [--xla]
                                             [--json out.json]

It runs on the machine's GPU when TensorFlow sees one (the first), else on the CPU, and says
which (`device` in the results). On a GPU, `--mixed-float16` times every contender in
`mixed_float16` (Keras' dynamic loss scaling) and `--xla` compiles every training step with XLA
(`jit_compile`); the models are channels-last (NHWC), Keras' default and what cuDNN's fp16
kernels want.

1. Training, MobileNetV2 1.0, batch 32, SGD, in one process, the contenders alternated in
   rounds (wall-clock speed swings from round to round on shared machines, so only figures of
   one run are compared, by their medians):
   - ours: `mobilenets train` (data pipeline from the bundled Fashion-MNIST sample resized to
     the input, flips, checkpoints, CSV/TensorBoard logs, throughput callback);
   - keras.applications' MobileNetV2 (Keras 3, its unfused BatchNormalization) + `fit`;
   - tf_keras' keras.applications MobileNetV2 (fused BatchNorm) + `fit`;
   - with --bfloat16, also ours with `runtime.mixed_precision: mixed_bfloat16`;
   keras.applications' on in-memory tensors; same architecture, batch, optimizer (no weight decay),
   loss and metrics, all timed by our `Throughput` callback (from the end of each epoch's
   first batch to its last): wall-clock images/s and CPU milliseconds per image (all threads).
2. Peak memory (RSS) of a training run and of an int8 conversion, each in its own process.
The input pipeline alone is benchmarks/input_pipeline.py's.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import provenance  # noqa: E402
import tensorflow as tf  # noqa: E402

from mobilenets import config as config_lib  # noqa: E402
from mobilenets.experiment import train  # noqa: E402
from mobilenets.training.callbacks import Throughput  # noqa: E402

BATCH = 32
CONTENDERS = ("ours", "keras.applications + Keras 3 fit", "keras.applications + tf_keras fit")
BFLOAT16 = "ours, mixed_bfloat16"


def device():
    """The device training runs on: the first GPU's name, or the CPU's."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    return f"CPU: {provenance.machine()['cpu']}"


def ours(size, steps, workdir, precision="float32", xla=False):
    config = config_lib.from_dict({
        "model": {"name": "mobilenet_v2", "input_shape": [size, size, 3]},
        "data": {"source": "sample", "augment": "flip", "crop_fraction": 1.0,
                 "train_limit": BATCH * (steps + 1), "eval_limit": BATCH, "full_test_set": False},
        # keras.applications' side gets plain SGD and cross-entropy: no weight decay or label
        # smoothing here either, so that only the loops differ.
        "train": {"epochs": 1, "batch_size": BATCH, "optimizer": "sgd", "schedule": "constant",
                  "learning_rate": 0.01, "weight_decay": 0.0, "label_smoothing": 0.0},
        "runtime": {"mixed_precision": precision, "jit_compile": xla},
        "export": {"modes": []}})
    metrics = train(config, workdir)
    return metrics["train_images_per_sec"], metrics["train_cpu_ms_per_image"]


def applications(size, steps, library, precision="float32", xla=False):
    """keras.applications' MobileNetV2 in `library` (keras or tf_keras) + its `fit`."""
    library.mixed_precision.set_global_policy(precision)
    try:
        model = library.applications.MobileNetV2(input_shape=(size, size, 3), weights=None,
                                                 classes=10)
    finally:
        library.mixed_precision.set_global_policy("float32")
    optimizer = library.optimizers.SGD(0.01)
    if precision == "mixed_float16":
        optimizer = library.mixed_precision.LossScaleOptimizer(optimizer)
    model.compile(optimizer, "categorical_crossentropy", jit_compile=xla,
                  metrics=["accuracy", library.metrics.TopKCategoricalAccuracy(5)])
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (BATCH * (steps + 1), size, size, 3)).astype("float32"))
    y = tf.constant(np.eye(10, dtype="float32")[rng.integers(0, 10, BATCH * (steps + 1))])
    timer = Throughput(BATCH)  # the callback that times our loop, so all are timed alike
    if library is not keras:
        from mobilenets.keras2 import callbacks
        hooks = callbacks(model, [timer])
    else:
        hooks = [timer]
    model.fit(x, y, batch_size=BATCH, epochs=1, callbacks=hooks, verbose=0)
    return timer.images_per_second, timer.cpu_ms_per_image


def training(size, steps, rounds, bfloat16=False, precision="float32", xla=False):
    import tf_keras

    runs = {name: [] for name in CONTENDERS + ((BFLOAT16,) if bfloat16 else ())}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            runs[CONTENDERS[1]].append(applications(size, steps, keras, precision, xla))
            runs[CONTENDERS[2]].append(applications(size, steps, tf_keras, precision, xla))
            runs[CONTENDERS[0]].append(ours(size, steps, pathlib.Path(tmp) / f"run{round_}",
                                            precision, xla))
            if bfloat16:
                runs[BFLOAT16].append(ours(size, steps, pathlib.Path(tmp) / f"bf16{round_}",
                                           "mixed_bfloat16"))
            print(f"{size}px round {round_ + 1}: " + ", ".join(
                f"{name} {rate:.1f} img/s, {cpu:.1f} ms CPU/img"
                for name, ((rate, cpu),) in ((n, r[-1:]) for n, r in runs.items())), flush=True)
    median = {name: {"img_per_s": statistics.median(r for r, _ in rows),
                     "cpu_ms_per_img": statistics.median(c for _, c in rows)}
              for name, rows in runs.items()}
    base = median[CONTENDERS[0]]
    ratios = {name: {"wall": base["img_per_s"] / m["img_per_s"],
                     "cpu": m["cpu_ms_per_img"] / base["cpu_ms_per_img"]}
              for name, m in median.items() if name != CONTENDERS[0]}
    for name, ratio in ratios.items():
        print(f"{size}px: ours / {name}: {ratio['wall']:.2f}x median wall-clock img/s, "
              f"{ratio['cpu']:.2f}x less CPU per image", flush=True)
    return {"size": size, "runs": runs, "median": median, "ours_vs": ratios}


PEAK = """
import resource, sys
sys.argv = {argv!r}
{body}
print("PEAK_RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss(body, argv=()):
    code = PEAK.format(argv=["x", *argv], body=body)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return float(done.stdout.split("PEAK_RSS_MB")[-1])


def memory(size):
    with tempfile.TemporaryDirectory() as tmp:
        training_mb = peak_rss(
            "from mobilenets.cli import train_main; train_main()",
            ["--config", str(ROOT / "experiments/quickstart.yaml"), "--workdir", tmp,
             "--set", f"model.input_shape=[{size},{size},3]", "--set", "model.alpha=1.0",
             "--set", "data.train_limit=640", "--set", "data.eval_limit=64",
             "--set", "data.full_test_set=false", "--set", "train.epochs=1",
             "--set", "train.batch_size=32", "--set", "export.modes=[]"])
        conversion_mb = peak_rss(f"""
import numpy as np
from mobilenets import build_model, export_tflite
model = build_model("mobilenet_v2", input_shape=({size}, {size}, 3), include_preprocessing=True)
images = np.random.default_rng(0).uniform(0, 255, (20, {size}, {size}, 3)).astype("float32")
export_tflite(model, "int8", lambda: ([image[None]] for image in images))
""")
    print(f"peak RSS, MobileNetV2 1.0 at {size}x{size}: training (batch 32) {training_mb:.0f} MB, "
          f"int8 conversion {conversion_mb:.0f} MB", flush=True)
    return [{"process": f"training (batch 32, {size}x{size})", "peak_rss_mb": training_mb},
            {"process": f"int8 conversion ({size}x{size})", "peak_rss_mb": conversion_mb}]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 224],
                        help="training benchmark input sizes")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per contender")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per size")
    parser.add_argument("--bfloat16", action="store_true",
                        help="also time our loop in mixed_bfloat16")
    parser.add_argument("--mixed-float16", action="store_true",
                        help="every contender in mixed_float16 (a GPU's)")
    parser.add_argument("--xla", action="store_true", help="every contender with jit_compile")
    parser.add_argument("--part", choices=["training", "memory", "all"], default="all")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    results = provenance.stamp()
    results["device"] = device()
    precision = "mixed_float16" if args.mixed_float16 else "float32"
    results["precision"], results["xla"] = precision, args.xla
    print(json.dumps(results), flush=True)
    if args.part in ("training", "all"):
        results["training"] = [training(size, args.steps, args.rounds, args.bfloat16,
                                        precision, args.xla) for size in args.sizes]
    if args.part in ("memory", "all"):
        results["peak_memory"] = memory(args.sizes[0])
    if args.json:
        provenance.save(results, args.json)  # and its CSV and Markdown tables


if __name__ == "__main__":
    main()
