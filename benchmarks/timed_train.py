"""Runs `mobilenets train` on an experiment from scratch and times it, then its QAT run from
the model: what the quickstart benchmarks (quickstart.py, detection_quickstart.py,
segmentation_quickstart.py) measure and write to results/."""

import json
import pathlib
import resource
import shutil
import subprocess
import sys
import time

import provenance

from mobilenets import config as config_lib


def timed_train(experiment, workdir, overrides=()):
    """Trains, evaluates and exports `experiment` (with `--set` `overrides`) into a fresh
    `workdir`; returns (wall-clock seconds, CPU seconds of all threads, metrics.json,
    export/report.json)."""
    workdir = pathlib.Path(workdir).resolve()
    shutil.rmtree(workdir, ignore_errors=True)  # from scratch: the time of a whole run
    command = [sys.executable, "-m", "mobilenets", "train", "--config", experiment,
               "--workdir", str(workdir), *(["--set", *overrides] if overrides else [])]
    print("$", " ".join(command), flush=True)
    before = cpu_seconds()
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=provenance.ROOT)
    wall = time.perf_counter() - started
    return (round(wall, 1), round(cpu_seconds() - before, 1),
            json.loads((workdir / "metrics.json").read_text()),
            json.loads((workdir / "export/report.json").read_text()))


def timed_qat(experiment, workdir, float_workdir, scores, keys, overrides=()):
    """Times the QAT `experiment` (with `--set` `overrides`) from the model of the float run in
    `float_workdir`, into `workdir`; returns its results: the experiment, its epochs, wall and
    CPU seconds, the QAT Keras model's `scores` and the `keys` of each file's report entry."""
    epochs = config_lib.load(provenance.ROOT / experiment, list(overrides)).train.epochs
    model = pathlib.Path(float_workdir).resolve() / "model.keras"
    wall, cpu, _, report = timed_train(experiment, workdir,
                                       [*overrides, f"model.init_from={model}"])
    return {"experiment": experiment, "epochs": epochs, "wall_seconds": wall, "cpu_seconds": cpu,
            "keras": {key: report["float"][key] for key in scores},
            "files": report_files(report, keys)}


def timed_quickstart(experiment, qat_experiment, workdir, scores, keys, overrides=()):
    """Trains `experiment` into `workdir`, then `qat_experiment` from its model into
    `<workdir>_qat` (both with `--set` `overrides`); returns (the float run's metrics.json, the
    part of a results file every quickstart shares: the experiment, wall and CPU seconds,
    training seconds, test images, the Keras model's `scores`, the `keys` of each file's
    report entry, and the QAT run's `timed_qat` results)."""
    wall, cpu, metrics, report = timed_train(experiment, workdir, overrides)
    qat = timed_qat(qat_experiment, f"{workdir}_qat", workdir, scores, keys, overrides)
    return metrics, {"experiment": experiment, "wall_seconds": wall, "cpu_seconds": cpu,
                     "train_seconds": metrics["train_seconds"], "test_images": metrics["images"],
                     "keras": {key: metrics[key] for key in scores},
                     "files": report_files(report, keys), "qat": qat}


def write_results(name, result, markdown):
    """results/<name>.json (`result`) and results/<name>.md (`markdown`), which it prints."""
    results = provenance.ROOT / "results"
    (results / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (results / f"{name}.md").write_text(markdown)
    print(markdown)


def report_files(report, keys):
    """The `keys` of each file's entry in an export report (those it has: the built-in kernels'
    figures are an int8 file's only)."""
    return {name: {key: entry[key] for key in keys if key in entry}
            for name, entry in report["files"].items()}


def cpu_seconds():
    """The CPU time (user and system) of every finished child process so far."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def heading(result):
    """The Markdown title and provenance line of a timed run's `result` (provenance.stamp()
    with wall_seconds and cpu_seconds)."""
    return [f"# {result['measurement']}", "",
            f"`{result['command']}` on {result['date']}, commit {result['commit']}, "
            f"{result['machine']['cpu']} ({result['machine']['cores']} cores): the whole run "
            f"(train, evaluate, export) {result['wall_seconds'] / 60:.1f} min wall clock, "
            f"{result['cpu_seconds'] / 60:.1f} min CPU.", ""] + ([
            f"Then QAT from its model (`{result['qat']['experiment']}`, "
            f"{result['qat']['epochs']} epochs): {result['qat']['wall_seconds'] / 60:.1f} min "
            f"wall clock, {result['qat']['cpu_seconds'] / 60:.1f} min CPU.", ""]
            if "qat" in result else [])
