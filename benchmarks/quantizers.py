"""The two int8 quantizers side by side: TensorFlow's TFLite converter (`export.quantizer:
converter`, the default) and the LiteRT Quantizer (`litert`), on the model of each finished run.

    python benchmarks/quantizers.py RUN [RUN ...] [--limit N] [--json results/quantizers.json]

For each run it exports `model.keras` to int8 twice with `mobilenets export` (the run's config,
the same calibration images, verified as a run's export is, into a scratch folder), and
tabulates from the two reports: the headline score (top-1), agreement with the Keras model, the
built-in kernels' agreement with XNNPACK, size, XNNPACK partitions and ops outside them. With
`--timed-runs N` (default 200) it also times the run's two int8 files in LiteRT with XNNPACK, 1
thread, round-robin so that drift hits both alike (`tflite_latency.time_together`): median and
90th percentile in ms. Run it on a quiet machine: another job skews the times.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance  # noqa: E402

QUANTIZERS = ("converter", "litert")


def export(run, quantizer, workdir, limit, modes=("int8",)):
    """The report `mobilenets export` writes for `modes` of the run's model, and its int8
    file's entry (None without int8)."""
    command = [sys.executable, "-m", "mobilenets", "export", "--config",
               str(run / "config.yaml"), "--model", str(run / "model.keras"), "--modes",
               *modes, "--workdir", str(workdir), "--set", f"export.quantizer={quantizer}",
               "export.max_drop=100"]
    if limit:
        command.append(f"export.verify_limit={limit}")
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    report = json.loads((workdir / "export" / "report.json").read_text())
    return report, report["files"].get("model_int8.tflite")


def int8_bytes(workdir):
    return (workdir / "export" / "model_int8.tflite").read_bytes()


def row(run, quantizer, report, entry):
    from mobilenets import config as config_lib

    model = config_lib.load(run / "config.yaml").model
    headline = "top1" if "top1" in entry else next(iter(report["float"]))
    return {"run": run.name, "model": f"{model.name} {model.alpha:g}",
            "input": "x".join(map(str, model.input_shape)), "quantizer": quantizer,
            "images": report["images"], "float": report["float"][headline],
            "int8": entry[headline], "agreement_with_keras": entry["agreement"],
            "builtin_agreement_with_xnnpack":
                entry.get("builtin_kernels", {}).get("agreement_with_xnnpack", ""),
            "size_kb": round(entry["size_mb"] * 1024, 1), "partitions": entry["partitions"],
            "outside_xnnpack": " ".join(entry["ops_outside_xnnpack"]) or "-",
            "input_type": entry["input"]["dtype"], "output_type": entry["output"]["dtype"]}


def arguments(doc, timing=False):
    """The command line of this script and of export_modes.py: runs, --limit, --json (and,
    with `timing`, --timed-runs)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="finished run directories")
    parser.add_argument("--limit", type=int, default=0,
                        help="verification images (default: the run's export.verify_limit)")
    parser.add_argument("--json", type=pathlib.Path, help="results file to write")
    if timing:
        parser.add_argument("--timed-runs", type=int, default=200,
                            help="timed runs of each int8 file (0: no timing)")
    return parser.parse_args()


def main():
    args = arguments(__doc__, timing=True)
    stamp = provenance.stamp()  # the commit measured, before anything runs
    rows = []
    for run in args.runs:
        files = []
        for quantizer in QUANTIZERS:
            with tempfile.TemporaryDirectory() as scratch:
                report, entry = export(run, quantizer, pathlib.Path(scratch), args.limit)
                files.append(int8_bytes(pathlib.Path(scratch)))
            rows.append(row(run, quantizer, report, entry))
        if args.timed_runs:
            from tflite_latency import time_together

            for entry, (median, p90) in zip(rows[-len(files):],
                                            time_together(files, 1, args.timed_runs)):
                entry.update(median_ms=round(median, 4), p90_ms=round(p90, 4))
        for entry in rows[-len(files):]:
            print(json.dumps(entry), flush=True)
    if args.json:
        provenance.save({**stamp, "rows": rows}, args.json)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
