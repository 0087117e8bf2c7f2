"""The classification quickstart, measured: trains, evaluates and exports
experiments/quickstart.yaml from scratch, then fine-tunes its model with QAT
(experiments/quickstart_qat.yaml), and records their figures.

    python benchmarks/quickstart.py [--workdir runs/quickstart_measured]
                                    [--set KEY=VALUE ...] [--name quickstart]

Runs `mobilenets train` on a fresh run directory and times it (wall clock, and the CPU time of
all threads), then the QAT run from its model into `<workdir>_qat`, and writes
results/quickstart.json and .md: top-1 of the Keras models (float, QAT) and of the float32,
int8 and QAT int8 files on the test images (as Android's clients feed them), each file's top-1
agreement with its Keras model, the int8 files' top-1 on LiteRT's built-in kernels, the files'
sizes, XNNPACK partitions and LiteRT latency, with the command, date, commit and machine. The
test images are Fashion-MNIST's 10,000 when the Debian package dataset-fashion-mnist is
installed, else the bundled 2,000. About 6 minutes on 2 cores. `--set` changes both
experiments (another model: `--set model.name=mobilenet_v3_small model.alpha=1.0 --name
quickstart_v3_small` writes results/quickstart_v3_small.*).
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402
from timed_train import heading, timed_quickstart, write_results  # noqa: E402

from mobilenets import config as config_lib  # noqa: E402

EXPERIMENT = "experiments/quickstart.yaml"
QAT_EXPERIMENT = "experiments/quickstart_qat.yaml"
SCORES = ("top1", "top5")
KEYS = ("top1", "top5", "agreement", "size_mb", "median_latency_ms", "partitions",
        "builtin_kernels")


def markdown(result):
    keras, qat = result["keras"], result["qat"]
    lines = [*heading(result), f"{result['test_images']:,} test images.", "",
             "| model | top-1 | top-1 agreement with its Keras model | top-1 on LiteRT's "
             "built-in kernels | size | latency (1 thread) | XNNPACK partitions |",
             "|---|---|---|---|---|---|---|",
             f"| Keras (float32) | {keras['top1']:.4f} | | | | | |",
             f"| QAT Keras (fake-quantized) | {qat['keras']['top1']:.4f} | | | | | |"]
    for name, entry in {**result["files"], **qat["files"]}.items():
        builtin = entry.get("builtin_kernels")  # int8 files only
        builtin = f"{builtin['top1']:.4f}" if builtin else "-"
        lines.append(f"| {name} | {entry['top1']:.4f} | {entry['agreement']:.1%} | {builtin} | "
                     f"{entry['size_mb']:.2f} MB | {entry['median_latency_ms']:.3f} ms | "
                     f"{entry['partitions']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/quickstart_measured")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides of both runs")
    parser.add_argument("--name", default="quickstart", help="results/<name>.json and .md")
    args = parser.parse_args()
    stamp = provenance.stamp()  # the commit measured, before anything runs
    metrics, measured = timed_quickstart(EXPERIMENT, QAT_EXPERIMENT, args.workdir, SCORES, KEYS,
                                         args.set)
    config = config_lib.load(provenance.ROOT / EXPERIMENT, args.set)
    model = f"{config.model.name} {config.model.alpha:g}"
    size = "x".join(map(str, config.model.input_shape))
    result = {"measurement": f"Classification quickstart ({model}, {size}, the bundled "
                             "Fashion-MNIST sample)",
              **stamp, "overrides": args.set, **measured}
    write_results(args.name, result, markdown(result))


if __name__ == "__main__":
    main()
