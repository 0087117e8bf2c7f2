"""The README's Fashion-MNIST results table, read from finished run directories.

    python benchmarks/results_table.py [--runs runs]

For each finished `runs/fashion_mnist_*/` run (experiments/fashion_mnist_*.yaml) and, if
present, its QAT run `runs/fashion_mnist_*_qat/` (experiments/fashion_mnist_qat.yaml):
the input size, parameters and multiply-adds at that size, float top-1 (Keras), PTQ int8 top-1
(and its top-1 agreement with the float model), QAT int8 top-1 (its agreement with the QAT
Keras model and its epochs), the PTQ int8 file's size and median latency (LiteRT, 1 thread,
measured during export verification), and the float run's training: epochs, augmentation,
weight EMA decay (if any), time on this machine and the run it was fine-tuned from (if any).
Prints Markdown; a fine-tuned run's row follows the row of the run it started from, so a chain of
stages reads top to bottom.
"""

import argparse
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from mobilenets import build_model, profile  # noqa: E402


def read(path):
    return json.loads(path.read_text()) if path.is_file() else None


def augmentation(data):
    """The training augmentation in a few words: "flip_crop 4 px, erase 0.5"."""
    words = data["augment"] + (f" {data['crop_padding']} px" if data.get("crop_padding") else "")
    erase = data.get("erase_probability")
    return words + (f", erase {erase:g}" if erase else "")


def row(run):
    """The table row of the run directory `run` (None if it is not finished)."""
    metrics, report = read(run / "metrics.json"), read(run / "export/report.json")
    if metrics is None or report is None or not (run / "config.yaml").is_file():
        return None
    config = yaml.safe_load((run / "config.yaml").read_text())
    model = config["model"]
    name = model["name"]
    counts = profile(build_model(name, alpha=model["alpha"],
                                 input_shape=tuple(model["input_shape"]), num_classes=10,
                                 **model["options"]))
    int8 = report["files"]["model_int8.tflite"]
    qat_run = run.with_name(run.name + "_qat")
    qat, qat_metrics = read(qat_run / "export/report.json"), read(qat_run / "metrics.json")
    if qat:
        qat = {**qat["files"]["model_qat_int8.tflite"], "epochs": qat_metrics["epochs"]}
    variant = run.name.removeprefix(f"fashion_mnist_{name}").strip("_")
    return {
        "model": f"{name} {model['alpha']:g}" + (f" ({variant})" if variant else ""),
        "input": "x".join(map(str, model["input_shape"])),
        "params": counts["params"], "macs": counts["macs"], "float": metrics["top1"],
        "ptq": int8["top1"], "agreement": int8["agreement"],
        "qat": qat,
        "int8_mb": int8["size_mb"], "int8_ms": int8["median_latency_ms"],
        "epochs": metrics["epochs"], "augment": augmentation(config["data"]),
        "ema": config["train"].get("ema_decay"),
        "hours": metrics["train_seconds"] / 3600,
        "run": run.name,
        "from": pathlib.Path(model["init_from"]).parent.name if model.get("init_from") else "",
    }


def chain_order(rows):
    """`rows` with each fine-tuned run right after the run it started from (depth first); runs
    started from scratch, or from a run not in the table, keep the order they came in. Every row
    appears once, even if two runs name each other as their start."""
    names = {r["run"] for r in rows}
    ordered, seen = [], set()

    def visit(parent):
        if parent["run"] in seen:
            return
        seen.add(parent["run"])
        ordered.append(parent)
        for child in rows:
            if child["from"] == parent["run"]:
                visit(child)
    for r in rows:
        if r["from"] not in names:
            visit(r)
    for r in rows:  # only runs in a cycle of init_from are left
        visit(r)
    return ordered


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    args = parser.parse_args()
    runs = sorted(p for p in pathlib.Path(args.runs).glob("fashion_mnist_*")
                  if p.is_dir() and not p.name.endswith("_qat"))
    rows = chain_order([r for r in map(row, runs) if r])
    print("| model | input | params | MACs | float top-1 | PTQ int8 top-1 (agreement) | "
          "QAT int8 top-1 (agreement) | int8 size | int8 latency | training |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        qat = (f"{r['qat']['top1']:.4f} ({100 * r['qat']['agreement']:.1f}%; "
               f"{r['qat']['epochs']} ep)" if r["qat"] else "-")
        print(f"| {r['model']} | {r['input']} | {r['params'] / 1e6:.2f}M | "
              f"{r['macs'] / 1e6:.1f}M | "
              f"{r['float']:.4f} | {r['ptq']:.4f} ({100 * (r['ptq'] - r['float']):+.2f}; "
              f"{100 * r['agreement']:.1f}%) | {qat} | {r['int8_mb']:.2f} MB | "
              f"{r['int8_ms']:.3f} ms | {r['epochs']} epochs, {r['augment']}, "
              + (f"EMA {r['ema']:g}, " if r["ema"] else "") + f"{r['hours']:.1f} h"
              + (f", from {r['from']}" if r["from"] else "") + " |")


if __name__ == "__main__":
    main()
