"""`mobilenets sweep`: one experiment trained at every point of a grid (widths, resolutions,
families, any config keys), each point exported to int8 and timed, then one table of accuracy,
size and latency with the accuracy-latency front, as the MobileNet papers draw it.

Each point is an ordinary run directory, `<workdir>/<point>/`, trained by `mobilenets train`
in a process of its own (up to `parallel` at once): resume, exact restart and every check of a
run apply, and a finished point is not trained again. The table, front and plot are written to
`<workdir>/sweep.{json,csv,md,png}`.

A grid file (YAML):

    grid:                     # every combination of these values
      model.alpha: [0.5, 1.0]
      model.input_shape: [[32, 32, 1], [48, 48, 1]]
    variants:                 # optional: each grid point once per variant
      - {model.name: mobilenet_v2}
      - {model.name: mobilenet_v4, model.options: {variant: conv_small}}
"""

import concurrent.futures
import csv
import datetime
import itertools
import json
import logging
import os
import pathlib
import re
import shlex
import subprocess
import sys

import yaml

from mobilenets import config as config_lib
from mobilenets import files, version
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

EXPORTS = ["float32", "int8"]  # what every point exports: the int8 file is timed
COLUMNS = ("point", "model", "input", "params_m", "macs_m", "validation_top1", "float_top1",
           "int8_top1", "int8_mb", "int8_ms", "training_hours", "front", "overrides")


def read_grid(path):
    """The points of the grid file at `path`: a list of {key path: value} overrides, each
    checked by loading it over an empty experiment (a typo fails here, not hours later)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"--grid {path} not found")
    try:
        grid = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"--grid {path}: YAML syntax error: {error}") from None
    if not isinstance(grid, dict) or set(grid) - {"grid", "variants"}:
        raise UserError(f"--grid {path}: expected a mapping with grid: (key: [values]) and "
                        "optionally variants: ([{key: value}])")
    axes = grid.get("grid") or {}
    variants = grid.get("variants") or [{}]
    if not isinstance(axes, dict) or not all(isinstance(v, list) and v for v in axes.values()):
        raise UserError(f"--grid {path}: grid: each key needs a list of values")
    if not isinstance(variants, list) or not all(isinstance(v, dict) for v in variants):
        raise UserError(f"--grid {path}: variants: expected a list of {{key: value}} mappings")
    points = [{**variant, **dict(zip(axes, values))}
              for variant in variants for values in itertools.product(*axes.values())]
    for point in points:
        data = {}
        for key, value in point.items():
            config_lib.apply_override(data, f"{key}={json.dumps(value)}")
        try:
            config_lib.from_dict(data)
        except UserError as error:
            raise UserError(f"--grid {path}: {error}") from None
    return points


def point_name(point):
    """A folder name for a point: its values in order, e.g. mobilenet_v2-0.5-32x32x1."""
    words = []
    for value in point.values():
        if isinstance(value, list):
            words.append("x".join(map(str, value)))
        elif isinstance(value, dict):
            words.append("-".join(str(v) for v in value.values()))
        else:
            words.append(str(value))
    return re.sub(r"[^A-Za-z0-9._x-]+", "_", "-".join(words)) or "default"


def sets(point):
    """The point as `--set` arguments (values as YAML)."""
    return [f"{key}={json.dumps(value)}" for key, value in point.items()] + [
        f"export.modes={json.dumps(EXPORTS)}"]


def finished(folder):
    return ((folder / "metrics.json").is_file() and (folder / "export/report.json").is_file()
            and "model_int8.tflite" in files.read_json(folder / "export/report.json").get(
                "files", {}))


def train_point(config, point, folder, threads):
    """Trains, evaluates and exports one point in a process of its own; returns its status."""
    if finished(folder):
        log.info("%s: finished before, not trained again", folder.name)
        return 0
    command = [sys.executable, "-m", "mobilenets", "train", "--config", str(config),
               "--workdir", str(folder), "--set", *sets(point)]
    if threads:
        command.append(f"runtime.threads={threads}")
    folder.mkdir(parents=True, exist_ok=True)
    files.write_json(folder / "point.json", {"point": point, "name": folder.name})
    log.info("%s: training (%s)", folder.name, shlex.join(command[1:]))
    with open(folder / "sweep.log", "ab") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        log.warning("%s: mobilenets train exited %d (its log: %s)", folder.name,
                    done.returncode, folder / "sweep.log")
    return done.returncode


def run(config, grid, workdir, parallel=1):
    """Trains every point of `grid` not finished yet; returns the points' folders."""
    points = read_grid(grid)
    config_lib.load(config)  # the experiment itself must load
    workdir = files.writable_folder(workdir, "--workdir")
    folders = [pathlib.Path(workdir) / point_name(point) for point in points]
    if len(set(folders)) != len(folders):
        raise UserError(f"--grid {grid}: two points have the same name; make their values "
                        "differ")
    threads = max(1, (os.cpu_count() or 1) // parallel) if parallel > 1 else 0
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        statuses = list(pool.map(lambda args: train_point(config, *args, threads),
                                 zip(points, folders)))
    failed = [f.name for f, status in zip(folders, statuses) if status]
    if failed:
        log.warning("%d point(s) did not finish: %s; run the same command again to resume "
                    "them", len(failed), ", ".join(failed))
    return folders


def row(folder):
    """The table row of a finished point's run directory, or None."""
    from mobilenets import artifacts, profile

    if not finished(folder):
        return None
    metrics = files.read_json(folder / "metrics.json")
    report = files.read_json(folder / "export/report.json")
    int8 = report["files"]["model_int8.tflite"]
    model = config_lib.load(folder / "config.yaml").model
    counts = profile(artifacts.load_model(folder / "model.keras"))
    validation = (metrics.get("validation") or {}).get("top1")
    return {"point": folder.name,
            "model": f"{model.name} {model.options.get('variant', model.alpha)}",
            "input": "x".join(map(str, model.input_shape)),
            "params_m": round(counts["params"] / 1e6, 3), "macs_m": round(counts["macs"] / 1e6, 1),
            "validation_top1": validation, "float_top1": metrics.get("top1"),
            "int8_top1": int8.get("top1"), "int8_mb": int8.get("size_mb"),
            "int8_ms": int8.get("median_latency_ms"),
            "training_hours": round((metrics.get("train_seconds") or 0) / 3600, 3),
            "overrides": files.read_json(folder / "point.json").get("point", {})}


def time_files(paths, rounds=5, runs=20):
    """The median latency (ms, LiteRT, XNNPACK, 1 thread) of each .tflite file, all timed in
    the same interleaved rounds (a point trained while others ran was timed under their load
    in its export's verification; here they share the conditions)."""
    import numpy as np

    from mobilenets.tflite.runner import TFLiteModel

    runners = [TFLiteModel(path) for path in paths]
    images = [np.random.default_rng(0).uniform(0, 255, r.input["shape"][1:]).astype(np.float32)
              for r in runners]
    for runner, image in zip(runners, images):
        runner(np.stack([image] * 3))  # warm-up
        runner.latencies.clear()
    for _ in range(rounds):
        for runner, image in zip(runners, images):
            runner(np.stack([image] * runs))
    return [round(runner.median_latency_ms, 4) for runner in runners]


def latencies_from(path):
    """{point name: milliseconds} of a CSV of file,ms (a phone's timings, from LiteRT's
    benchmark_model): `file` a point's name or a path whose folder above export/ is it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"--latency-from {path} not found")
    found = {}
    with path.open(newline="") as rows:
        for line, entry in enumerate(csv.DictReader(rows), start=2):
            try:
                name, ms = entry["file"], float(entry["ms"])
            except (KeyError, TypeError, ValueError):
                raise UserError(f"--latency-from {path}, line {line}: expected columns file,ms "
                                "with a number of milliseconds") from None
            parts = pathlib.PurePath(name).parts
            point = parts[-3] if len(parts) >= 3 and parts[-2] == "export" else parts[-1]
            found[point] = ms
    return found


def front(rows, cost):
    """Marks `front`: the rows no other row beats on accuracy (validation top-1 where held
    out, else test top-1) and on `cost` ("int8_ms" or "int8_mb") at once."""
    def accuracy(r):
        return r["validation_top1"] if r["validation_top1"] is not None else r["float_top1"]

    for r in rows:
        r["front"] = not any(accuracy(o) >= accuracy(r) and o[cost] <= r[cost]
                             and (accuracy(o) > accuracy(r) or o[cost] < r[cost]) for o in rows)
    return accuracy


def table(folders, workdir, by="int8_ms", budget_ms=None, budget_mb=None, latency_from=None,
          command=None):
    """Writes `<workdir>/sweep.{json,csv,md,png}` from the finished points of `folders`;
    returns the results (rows, front, the best point within the budgets)."""
    done = [(f, r) for f, r in ((f, row(f)) for f in folders) if r is not None]
    if not done:
        raise UserError("sweep: no finished point to tabulate yet")
    rows = [r for _, r in done]
    source = "this machine's LiteRT (XNNPACK, 1 thread), timed together at the end"
    if latency_from:
        timings = latencies_from(latency_from)
        missing = [r["point"] for r in rows if r["point"] not in timings]
        if missing:
            raise UserError(f"--latency-from {latency_from} has no time for {', '.join(missing)}")
        for r in rows:
            r["int8_ms"] = timings[r["point"]]
        source = f"{pathlib.Path(latency_from).name} (measured elsewhere)"
    else:
        for (_, entry), ms in zip(done, time_files([f / "export/model_int8.tflite"
                                                     for f, _ in done])):
            entry["int8_ms"] = ms
    accuracy = front(rows, by)
    held_out = all(r["validation_top1"] is not None for r in rows)
    within = [r for r in rows if (budget_ms is None or r["int8_ms"] <= budget_ms)
              and (budget_mb is None or r["int8_mb"] <= budget_mb)]
    best = max(within, key=accuracy)["point"] if within else None
    results = {"command": command or shlex.join(["mobilenets", *sys.argv[1:]]),
               "date": datetime.date.today().isoformat(), "commit": version.commit(),
               "machine": _machine(), "latency": source, "front_by": by,
               "chosen_on": "validation top-1 (held-out images)" if held_out else
               "test top-1 (no point held images out: set data.holdout to choose honestly)",
               "budget": {"ms": budget_ms, "mb": budget_mb, "best": best}, "points": rows}
    workdir = pathlib.Path(workdir)
    files.write_json(workdir / "sweep.json", results)
    _write_csv(rows, workdir / "sweep.csv")
    files.write_text(workdir / "sweep.md", _markdown(results))
    _plot(rows, accuracy, by, workdir / "sweep.png", held_out)
    return results


def collect(folders):
    """The point folders under each of `folders` (workdirs of sweeps run on several
    machines)."""
    found = []
    for folder in map(pathlib.Path, folders):
        if not folder.is_dir():
            raise UserError(f"--collect {folder} not found")
        found += sorted(p.parent for p in folder.glob("*/point.json"))
    return found


def _machine():
    from mobilenets.tflite.runner import litert_runtime

    described = litert_runtime()
    return {"cpu": described["cpu"], "cores": os.cpu_count(), "arch": described["machine"],
            "litert": described["litert"]}


def _write_csv(rows, path):
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: json.dumps(r[k]) if k == "overrides" else r[k] for k in COLUMNS}
                     for r in rows)
    files.write_text(path, text.getvalue())


def _markdown(results):
    rows = results["points"]
    lines = [f"# Sweep: accuracy, size and latency of {len(rows)} points", "",
             f"`{results['command']}` on {results['date']}, commit {results['commit']}, "
             f"{results['machine']['cpu']} ({results['machine']['cores']} cores, "
             f"{results['machine']['arch']}, LiteRT {results['machine']['litert']}).", "",
             f"Latency: {results['latency']}. Front (marked *): the points no other beats on "
             f"{results['chosen_on']} and {results['front_by'].replace('_', ' ')} at once.", "",
             "| point | model | input | params (M) | MACs (M) | validation top-1 | float top-1 "
             "| int8 top-1 | int8 MB | int8 ms | training h |", "|---|" + "---|" * 10]
    def score(value):
        return "-" if value is None else f"{value:.4f}"

    for r in sorted(rows, key=lambda r: r[results["front_by"]]):
        cells = [r["point"] + (" *" if r["front"] else ""), r["model"], r["input"],
                 r["params_m"], r["macs_m"], score(r["validation_top1"]),
                 score(r["float_top1"]), score(r["int8_top1"]), r["int8_mb"], r["int8_ms"],
                 r["training_hours"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    budget = results["budget"]
    if budget["ms"] is not None or budget["mb"] is not None:
        limits = " and ".join(f"{v} {u}" for v, u in ((budget["ms"], "ms"), (budget["mb"], "MB"))
                              if v is not None)
        lines += ["", f"Within {limits}: " + (f"**{budget['best']}**" if budget["best"]
                                              else "no point")]
    return "\n".join(lines) + "\n"


def _plot(rows, accuracy, by, path, held_out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        axis.scatter(r[by], accuracy(r), color="tab:blue" if r["front"] else "tab:gray")
        axis.annotate(r["point"], (r[by], accuracy(r)), fontsize=7, xytext=(3, 3),
                      textcoords="offset points")
    edge = sorted((r for r in rows if r["front"]), key=lambda r: r[by])
    axis.plot([r[by] for r in edge], [accuracy(r) for r in edge], color="tab:blue",
              label="front")
    axis.set_xlabel("int8 latency (ms)" if by == "int8_ms" else "int8 file (MB)")
    axis.set_ylabel("validation top-1" if held_out else "test top-1")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    with files.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
