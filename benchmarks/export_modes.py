"""Every export mode of a finished run's model: float32, float16, dynamic-range, int8 and
int16x8 files, each scored on the run's evaluation images as Android's clients feed them.

    python benchmarks/export_modes.py RUN [RUN ...] [--limit N] [--json results/export_modes.json]

For each run it exports `model.keras` in every mode with `mobilenets export` (the run's config,
verified as a run's export is, into a scratch folder) and tabulates from the report: top-1,
agreement with the Keras model, size, XNNPACK partitions and the ops left outside them. No
latency: it is measured apart, on a quiet machine (benchmarks/tflite_latency.py).
"""

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance  # noqa: E402
from quantizers import arguments, export  # noqa: E402

MODES = ("float32", "float16", "dynamic_range", "int8", "int16x8")


def rows(run, report):
    from mobilenets import config as config_lib

    model = config_lib.load(run / "config.yaml").model
    for mode in MODES:
        entry = report["files"][f"model_{mode}.tflite"]
        yield {"run": run.name, "model": f"{model.name} {model.alpha:g}",
               "input": "x".join(map(str, model.input_shape)), "mode": mode,
               "images": report["images"], "keras_top1": report["float"]["top1"],
               "top1": entry["top1"], "agreement_with_keras": entry["agreement"],
               "size_mb": entry["size_mb"], "partitions": entry["partitions"],
               "outside_xnnpack": " ".join(sorted(set(entry["ops_outside_xnnpack"]))) or "-"}


def main():
    args = arguments(__doc__)
    stamp = provenance.stamp()  # the commit measured, before anything runs
    table = []
    for run in args.runs:
        with tempfile.TemporaryDirectory() as scratch:
            report, _ = export(run, "converter", pathlib.Path(scratch), args.limit, MODES)
        table += list(rows(run, report))
        for row in table[-len(MODES):]:
            print(row, flush=True)
    if args.json:
        provenance.save({**stamp, "rows": table}, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
