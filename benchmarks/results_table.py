"""The README's Fashion-MNIST results table, read from finished run directories.

    python benchmarks/results_table.py [--runs runs]

For each family with a `runs/fashion_mnist_<family>/` run (from
experiments/fashion_mnist_<family>.yaml) and, if present, its QAT run
`runs/fashion_mnist_<family>_qat/` (from experiments/fashion_mnist_qat.yaml):
parameters and multiply-adds at the run's input size, float top-1 (Keras), PTQ int8 top-1,
QAT int8 top-1, the int8 file's size and median latency (LiteRT, 1 thread, measured during
export verification), and the float run's training time on this machine. Prints Markdown.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from mobilenets import build_model, list_models, profile  # noqa: E402


def read(path):
    return json.loads(path.read_text()) if path.is_file() else None


def row(runs, name):
    run = runs / f"fashion_mnist_{name}"
    metrics, report = read(run / "metrics.json"), read(run / "export/report.json")
    if metrics is None or report is None:
        return None
    config = yaml.safe_load((run / "config.yaml").read_text())["model"]
    counts = profile(build_model(name, alpha=config["alpha"],
                                 input_shape=tuple(config["input_shape"]), num_classes=10,
                                 **config["options"]))
    int8 = report["files"]["model_int8.tflite"]
    qat = read(runs / f"fashion_mnist_{name}_qat/export/report.json")
    qat_top1 = qat["files"]["model_qat_int8.tflite"]["top1"] if qat else None
    return {
        "model": f"{name} {config['alpha']:g}", "params": counts["params"],
        "macs": counts["macs"], "float": metrics["top1"], "ptq": int8["top1"], "qat": qat_top1,
        "int8_mb": int8["size_mb"], "int8_ms": int8["median_latency_ms"],
        "partitions": int8["partitions"], "epochs": metrics["epochs"],
        "hours": metrics["train_seconds"] / 3600,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    rows = [r for r in (row(pathlib.Path(args.runs), name) for name in list_models()) if r]
    print("| model (32x32x1) | params | MACs | float top-1 | PTQ int8 top-1 | QAT int8 top-1 | "
          "int8 size | int8 latency (1 thread) | training |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        qat = f"{r['qat']:.4f}" if r["qat"] is not None else "-"
        print(f"| {r['model']} | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.1f}M | "
              f"{r['float']:.4f} | {r['ptq']:.4f} ({100 * (r['ptq'] - r['float']):+.2f}) | "
              f"{qat} | {r['int8_mb']:.2f} MB | {r['int8_ms']:.3f} ms | "
              f"{r['epochs']} epochs, {r['hours']:.2f} h |")


if __name__ == "__main__":
    main()
