"""Verifies a run's exported classifier files on the phone's instruction set: LiteRT's aarch64
kernels under qemu user-mode emulation, both kernel paths (XNNPACK, what MediaPipe apps get, and
LiteRT's built-in kernels), against the same files on this x86 machine.

    sudo python scripts/arm64_verify.py RUN [RUN ...] [--root /srv/arm64] [--cpus cortex-a76]
        [--limit N] [--results results/arm64.json]

The verification images are the run's evaluation images (`export.verify_limit` of them, or
`--limit`) fed as Android's clients feed them (`pipeline.client_dataset`, then
`TFLiteModel.fed`), saved once and run by the same small program (`scripts/arm64_runner.py`)
on both machines, so that the runs differ only in the machine. For each file, emulated core and
kernel path it reports top-1, agreement of the top-1 with x86's on the same path, the share of
outputs bit-identical to x86's and the largest absolute difference of an output; the result is the
`arm64` entry of the run's `export/report.json` and a table on stdout.

It needs root (chroot), `binfmt_misc` with an aarch64 interpreter registered, and an arm64 root
filesystem with python3, numpy and ai-edge-litert in `/opt/litert` (`scripts/arm64_root.sh`
makes both; docs/android.md says why each piece). Without them it exits with status 3 and the
reason, which CI prints as the reason it skipped.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance  # noqa: E402

from mobilenets import console  # noqa: E402

console.setup(verbose=False)  # TensorFlow's start-up lines off, as the mobilenets command does

RUNNER = ROOT / "scripts" / "arm64_runner.py"
ROOT_PYTHON = "/opt/litert/bin/python"  # in the arm64 root
BINFMT = pathlib.Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
CANNOT_EMULATE = 3  # exit status: this machine cannot run the check


def cannot_emulate(root):
    """Why this machine cannot run aarch64 LiteRT under emulation, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (chroot into the arm64 root filesystem)"
    if not BINFMT.is_file() or "enabled" not in BINFMT.read_text():
        return ("no aarch64 interpreter registered in binfmt_misc (scripts/arm64_root.sh "
                "registers Debian 13's qemu-aarch64)")
    if not (root / ROOT_PYTHON.lstrip("/")).exists():
        return f"no arm64 root filesystem with LiteRT at {root} (scripts/arm64_root.sh makes one)"
    if not (root / "sys/devices/system/cpu").is_dir():
        return (f"{root}/sys is not mounted: XNNPACK would be silently off (mount --bind /sys "
                f"{root}/sys)")
    return None


def emulator():
    """The aarch64 interpreter binfmt_misc runs, and its version line."""
    interpreter = next(line.split(None, 1)[1] for line in BINFMT.read_text().splitlines()
                       if line.startswith("interpreter"))
    version = subprocess.run([interpreter, "--version"], capture_output=True, text=True)
    return f"{version.stdout.splitlines()[0]} ({interpreter})"


def verification_inputs(run, limit):
    """{file name: (its inputs in its own dtype, the labels)} of the run's classifier files."""
    from mobilenets import config as config_lib
    from mobilenets import data as data_lib
    from mobilenets import tasks
    from mobilenets.data import pipeline
    from mobilenets.tflite.runner import TFLiteModel

    config = config_lib.load(run / "config.yaml")
    task = tasks.get(config.task)
    if task.labels != "classes":
        raise SystemExit(f"{run}: a {config.task.name} run; this check scores classifiers")
    data = data_lib.load(config.data, seed=config.train.seed, splits=("eval",),
                         channels=config.model.input_shape[2], labels=task.labels)
    split = data.eval.limit(limit if limit is not None else config.export.verify_limit)
    files = sorted(p for p in (run / "export").glob("model_*.tflite"))
    if not files:
        raise SystemExit(f"{run}/export has no model_*.tflite files")
    prepared = {}
    for path in files:
        runner = TFLiteModel(path, api="interpreter")
        shape = tuple(int(d) for d in runner.input["shape"][1:])
        images, labels = [], []
        for batch, truth in pipeline.client_dataset(
                split, shape, task.examples(None, len(data.class_names)), 64):
            images.append(batch.numpy())
            labels.append(truth.numpy().argmax(-1))
        prepared[path] = (runner.fed(np.concatenate(images)), np.concatenate(labels))
    return prepared


def run_runner(folder, root=None, cpu=None):
    """The runner's outputs on `folder`: on this machine, or in `root` under emulation."""
    if root is None:
        command, env = [sys.executable, str(RUNNER), str(folder)], os.environ
    else:
        inside = "/" + str(folder.relative_to(root))
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        command = [chroot, str(root), ROOT_PYTHON, f"{inside}/arm64_runner.py", inside]
        env = {"PATH": "/usr/bin:/bin", "QEMU_CPU": cpu, "HOME": "/root"}
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    runtime = json.loads((folder / "runtime.json").read_text())
    return ({path: np.load(folder / f"outputs_{path}.npy") for path in ("xnnpack", "builtin")},
            runtime)


def compare(outputs, reference, labels):
    top1 = outputs.argmax(-1)
    difference = np.abs(outputs.astype(np.float64) - reference.astype(np.float64))
    return {"top1": round(float((top1 == labels).mean()), 4),
            "top1_agreement_with_x86": round(float((top1 == reference.argmax(-1)).mean()), 4),
            "identical_to_x86": round(float((difference.max(-1) == 0).mean()), 4),
            "max_abs_difference": float(difference.max())}


def verify(run, args):
    """The `arm64` entry of `run`'s report (also written into its export/report.json)."""
    prepared = verification_inputs(run, args.limit)
    entry = {"emulator": emulator(), "root": "Debian " + (
        args.root / "etc/debian_version").read_text().strip() + " arm64", "files": {}}
    work = pathlib.Path(tempfile.mkdtemp(prefix="mobilenets-arm64-", dir=args.root / "tmp"))
    try:
        shutil.copy(RUNNER, work / "arm64_runner.py")
        for path, (inputs, labels) in prepared.items():
            shutil.copy(path, work / "model.tflite")
            np.save(work / "inputs.npy", inputs)
            x86, runtime = run_runner(work)
            entry["x86_litert"] = runtime["litert"]
            result = {"images": len(labels), "x86": {
                kind: {"top1": round(float((x86[kind].argmax(-1) == labels).mean()), 4)}
                for kind in x86}}
            result["x86"]["xnnpack_partitions"] = runtime["xnnpack_partitions"]
            for cpu in args.cpus:
                arm, runtime = run_runner(work, args.root, cpu)
                entry["arm64_litert"] = runtime["litert"]
                result[cpu] = {kind: compare(arm[kind], x86[kind], labels) for kind in arm}
                result[cpu]["xnnpack_partitions"] = runtime["xnnpack_partitions"]
                print(f"{run.name} {path.name} {cpu}: " + "; ".join(
                    f"{kind} top-1 {r['top1']:.4f} (x86 {result['x86'][kind]['top1']:.4f}), "
                    f"{100 * r['identical_to_x86']:.1f}% identical"
                    for kind, r in result[cpu].items() if kind != "xnnpack_partitions")
                    + f"; {runtime['xnnpack_partitions']} XNNPACK partition(s)", flush=True)
            entry["files"][path.name] = result
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from mobilenets import files

    report_path = run / "export" / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["arm64"] = entry
    files.write_json(report_path, report)
    print(f"wrote the arm64 entry of {report_path}")
    return entry


def rows(run, entry):
    """One results row per file, emulated core and kernel path."""
    from mobilenets import config as config_lib

    model = config_lib.load(run / "config.yaml").model
    for name, result in entry["files"].items():
        for cpu, paths in result.items():
            if cpu in ("images", "x86"):
                continue
            for kind in ("xnnpack", "builtin"):
                yield {"run": run.name, "model": f"{model.name} {model.alpha:g}",
                       "input": "x".join(map(str, model.input_shape)), "file": name,
                       "core": cpu, "kernels": kind, "images": result["images"],
                       "x86_top1": result["x86"][kind]["top1"], **paths[kind],
                       "xnnpack_partitions": paths["xnnpack_partitions"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path,
                        help="run directories with export/")
    parser.add_argument("--root", type=pathlib.Path, default=pathlib.Path("/srv/arm64"),
                        help="the arm64 root filesystem (default /srv/arm64)")
    parser.add_argument("--cpus", nargs="+", default=["cortex-a55", "cortex-a76"],
                        help="emulated cores, qemu's names (default cortex-a55 cortex-a76)")
    parser.add_argument("--limit", type=int, help="images (default export.verify_limit)")
    parser.add_argument("--results", type=pathlib.Path,
                        help="also write the runs' rows to this results JSON (and .md, .csv)")
    args = parser.parse_args()
    reason = cannot_emulate(args.root)
    if reason:
        print(f"arm64 verification skipped: {reason}", file=sys.stderr)
        sys.exit(CANNOT_EMULATE)
    table, entry = [], None
    for run in args.runs:
        entry = verify(run, args)
        table += list(rows(run, entry))
    if args.results:
        provenance.save({**provenance.stamp(), "emulator": entry["emulator"],
                         "root": entry["root"], "litert": entry["arm64_litert"],
                         "rows": table}, args.results)
        print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
