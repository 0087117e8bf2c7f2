"""The detection quickstart, measured: trains, evaluates and exports
experiments/detection_quickstart.yaml from scratch and records its figures.

    python benchmarks/detection_quickstart.py [--workdir runs/detection_quickstart_measured]

Runs `mobilenets train` on a fresh run directory and times it (wall clock, and the CPU time of
all threads), then writes results/detection_quickstart.json and .md: COCO mAP@[.5:.95], mAP@.5
and mAP@.75 of the Keras model and of the float32 and int8 files on the 500 test scenes (as
Android's clients feed them), the files' sizes, XNNPACK partitions and LiteRT latency, with the
command, date, commit and machine. About 10 minutes on 2 cores.
"""

import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402
from timed_train import heading, timed_train  # noqa: E402

EXPERIMENT = "experiments/detection_quickstart.yaml"


def markdown(result):
    keras = result["keras"]
    lines = [*heading(result),
             f"{result['test_images']} test scenes, {result['test_objects']} objects.", "",
             "| model | mAP@[.5:.95] | mAP@.5 | mAP@.75 | size | latency (1 thread) | "
             "XNNPACK partitions |",
             "|---|---|---|---|---|---|---|",
             f"| Keras (float32) | {keras['map']:.4f} | {keras['map50']:.4f} | "
             f"{keras['map75']:.4f} | | | |"]
    for name, entry in result["files"].items():
        lines.append(f"| {name} | {entry['map']:.4f} | {entry['map50']:.4f} | "
                     f"{entry['map75']:.4f} | {entry['size_mb']:.2f} MB | "
                     f"{entry['median_latency_ms']:.2f} ms | {entry['partitions']} (+ "
                     f"{', '.join(entry['ops_outside_xnnpack'])}) |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/detection_quickstart_measured")
    args = parser.parse_args()
    wall, cpu, metrics, report = timed_train(EXPERIMENT, args.workdir)
    keys = ("map", "map50", "map75", "size_mb", "median_latency_ms", "partitions",
            "ops_outside_xnnpack")
    result = {"measurement": "Detection quickstart (SSDLite, MobileNetV2 0.35, 128x128, "
                             "synthetic Fashion-MNIST scenes)",
              **provenance.stamp(), "experiment": EXPERIMENT,
              "wall_seconds": wall, "cpu_seconds": cpu,
              "train_seconds": metrics["train_seconds"], "test_images": metrics["images"],
              "test_objects": metrics["objects"],
              "keras": {key: metrics[key] for key in ("map", "map50", "map75")},
              "per_class_ap50_95": metrics["per_class"],
              "files": {name: {key: entry[key] for key in keys}
                        for name, entry in report["files"].items()}}
    results = provenance.ROOT / "results"
    (results / "detection_quickstart.json").write_text(json.dumps(result, indent=2) + "\n")
    (results / "detection_quickstart.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
