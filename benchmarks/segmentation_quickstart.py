"""The segmentation quickstart, measured: trains, evaluates and exports
experiments/segmentation_quickstart.yaml from scratch, then fine-tunes its model with QAT
(experiments/segmentation_quickstart_qat.yaml), and records their figures.

    python benchmarks/segmentation_quickstart.py [--workdir runs/segmentation_quickstart_measured]

Times `mobilenets train` on a fresh run directory (wall clock, and the CPU time of all
threads), then the QAT run from its model into `<workdir>_qat`, and writes
results/segmentation_quickstart.json and .md: mIoU and pixel accuracy of the Keras models
(float, QAT) and of the float32, int8 and QAT int8 files on the test scenes (as Android's
clients feed them), IoU per class, the files' sizes, XNNPACK partitions and LiteRT latency,
with the command, date, commit and machine. About 10 minutes on 2 cores.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402
from timed_train import heading, timed_quickstart, write_results  # noqa: E402

EXPERIMENT = "experiments/segmentation_quickstart.yaml"
QAT_EXPERIMENT = "experiments/segmentation_quickstart_qat.yaml"
SCORES = ("miou", "pixel_accuracy")
KEYS = ("miou", "pixel_accuracy", "agreement", "size_mb", "median_latency_ms", "partitions",
        "ops_outside_xnnpack")


def markdown(result):
    keras, qat = result["keras"], result["qat"]
    lines = [*heading(result),
             f"{result['test_images']} test scenes; mIoU over the 11 classes (background and "
             "the 10 Fashion-MNIST items).", "",
             "| model | mIoU | pixel accuracy | agreement with Keras | size | latency (1 thread) "
             "| XNNPACK partitions |",
             "|---|---|---|---|---|---|---|",
             f"| Keras (float32) | {keras['miou']:.4f} | {keras['pixel_accuracy']:.4f} | | | | |",
             f"| QAT Keras (fake-quantized) | {qat['keras']['miou']:.4f} | "
             f"{qat['keras']['pixel_accuracy']:.4f} | | | | |"]
    for name, entry in {**result["files"], **qat["files"]}.items():
        lines.append(f"| {name} | {entry['miou']:.4f} | {entry['pixel_accuracy']:.4f} | "
                     f"{entry['agreement']:.4f} | {entry['size_mb']:.2f} MB | "
                     f"{entry['median_latency_ms']:.2f} ms | {entry['partitions']} |")
    lines += ["", "Agreement: the fraction of pixels given the same class as the Keras model "
              "(the QAT file: as the QAT Keras model).", "",
              "IoU per class (Keras model):", "", "| class | IoU |", "|---|---|"]
    lines += [f"| {name} | {iou:.4f} |" for name, iou in result["per_class_iou"].items()
              if iou is not None]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/segmentation_quickstart_measured")
    args = parser.parse_args()
    stamp = provenance.stamp()  # the commit measured, before anything runs
    metrics, measured = timed_quickstart(EXPERIMENT, QAT_EXPERIMENT, args.workdir, SCORES, KEYS)
    result = {"measurement": "Segmentation quickstart (LR-ASPP, MobileNetV2 0.35, 96x96, "
                             "synthetic Fashion-MNIST scenes)",
              **stamp, **measured, "per_class_iou": metrics["per_class_iou"]}
    write_results("segmentation_quickstart", result, markdown(result))


if __name__ == "__main__":
    main()
