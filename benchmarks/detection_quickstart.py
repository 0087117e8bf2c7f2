"""The detection quickstart, measured: trains, evaluates and exports
experiments/detection_quickstart.yaml from scratch, then fine-tunes its model with QAT
(experiments/detection_quickstart_qat.yaml), and records their figures.

    python benchmarks/detection_quickstart.py [--workdir runs/detection_quickstart_measured]

Runs `mobilenets train` on a fresh run directory and times it (wall clock, and the CPU time of
all threads), then the QAT run from its model into `<workdir>_qat`, and writes
results/detection_quickstart.json and .md: COCO mAP@[.5:.95], mAP@.5 and mAP@.75 of the Keras
models (float, QAT) and of the float32, int8 and QAT int8 files on the 500 test scenes (as
Android's clients feed them), the files' sizes, XNNPACK partitions and LiteRT latency, with the
command, date, commit and machine. About 15 minutes on 2 cores.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402
from timed_train import heading, timed_quickstart, write_results  # noqa: E402

EXPERIMENT = "experiments/detection_quickstart.yaml"
QAT_EXPERIMENT = "experiments/detection_quickstart_qat.yaml"
SCORES = ("map", "map50", "map75")
KEYS = ("map", "map50", "map75", "size_mb", "median_latency_ms", "partitions",
        "ops_outside_xnnpack")


def markdown(result):
    keras, qat = result["keras"], result["qat"]
    lines = [*heading(result),
             f"{result['test_images']} test scenes, {result['test_objects']} objects.", "",
             "| model | mAP@[.5:.95] | mAP@.5 | mAP@.75 | size | latency (1 thread) | "
             "XNNPACK partitions |",
             "|---|---|---|---|---|---|---|",
             f"| Keras (float32) | {keras['map']:.4f} | {keras['map50']:.4f} | "
             f"{keras['map75']:.4f} | | | |",
             f"| QAT Keras (fake-quantized) | {qat['keras']['map']:.4f} | "
             f"{qat['keras']['map50']:.4f} | {qat['keras']['map75']:.4f} | | | |"]
    for name, entry in {**result["files"], **qat["files"]}.items():
        lines.append(f"| {name} | {entry['map']:.4f} | {entry['map50']:.4f} | "
                     f"{entry['map75']:.4f} | {entry['size_mb']:.2f} MB | "
                     f"{entry['median_latency_ms']:.2f} ms | {entry['partitions']} (+ "
                     f"{', '.join(entry['ops_outside_xnnpack'])}) |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/detection_quickstart_measured")
    args = parser.parse_args()
    stamp = provenance.stamp()  # the commit measured, before anything runs
    metrics, measured = timed_quickstart(EXPERIMENT, QAT_EXPERIMENT, args.workdir, SCORES, KEYS)
    result = {"measurement": "Detection quickstart (SSDLite, MobileNetV2 0.35, 128x128, "
                             "synthetic Fashion-MNIST scenes)",
              **stamp, **measured, "test_objects": metrics["objects"],
              "per_class_ap50_95": metrics["per_class"]}
    write_results("detection_quickstart", result, markdown(result))


if __name__ == "__main__":
    main()
