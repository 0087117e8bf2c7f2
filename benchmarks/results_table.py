"""The Fashion-MNIST results: rows read from finished run directories, kept in
results/fashion_mnist.csv, shown in results/fashion_mnist.md and results/fashion_mnist.png.

    python benchmarks/results_table.py runs/recipe_s42 runs/recipe_s43 [RUN ...] [--drop RUN]

Each run directory given (a finished `mobilenets train` run of an experiments/fashion_mnist_*.yaml
file, with its QAT run `<run>_qat/` beside it if there is one) becomes the row of that name in the
CSV, replacing an older row of the same name, and its training curve results/curves/<run>.png;
the other rows stay as they are (--drop removes rows by name). A row holds the experiment and
seed, the input size, parameters and multiply-adds at that size, the validation top-1 (if the
run held images out of training), float top-1 on the test split (Keras), PTQ int8 top-1 and its
top-1 agreement with the float model, QAT int8 top-1 and its agreement with the QAT Keras model,
the PTQ int8 file's size and median latency (LiteRT, 1 thread, from the export's verification),
the training (epochs, augmentation, hours), the command that rebuilds the run directory from a
clone, the commit(s) the run trained at (its sessions.json), the date, and the CPU. The table
shows one line per experiment: with several seeds, their mean and sample standard deviation,
each seed's figures listed below it. Run it on the machine that trained the runs: the CPU is
read from it.
"""

import argparse
import csv
import datetime
import json
import os
import pathlib
import shlex
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import provenance  # noqa: E402
import yaml  # noqa: E402

from mobilenets import build_model, profile  # noqa: E402

RESULTS = provenance.ROOT / "results"
COLUMNS = ("run", "experiment", "seed", "model", "input", "params_m", "macs_m", "training", "hours",
           "validation_top1", "float_top1", "ptq_int8_top1", "ptq_agreement", "qat_int8_top1",
           "qat_agreement", "qat_epochs", "int8_mb", "int8_ms", "command", "qat_command",
           "date", "commit", "machine")


def read(path):
    return json.loads(path.read_text()) if path.is_file() else None


def augmentation(data):
    """The training augmentation in a few words: "flip_crop 4 px, erase 0.5"."""
    words = data["augment"] + (f" {data['crop_padding']} px" if data.get("crop_padding") else "")
    erase = data.get("erase_probability")
    return words + (f", erase {erase:g}" if erase else "")


def model_words(model):
    """"mobilenet_v4 conv_small", "mobilenet_v2 1.0": the family and what sets its size."""
    options = model.get("options") or {}
    return f"{model['name']} " + (options["variant"] if "variant" in options
                                  else f"{model['alpha']:g}")


def qat_command(run, model):
    """The command of `run`'s QAT fine-tune, as experiments/fashion_mnist_qat.yaml says."""
    sets = [f"model.name={model['name']}", f"model.init_from=runs/{run.name}/model.keras"]
    if model.get("options"):
        sets.append(f"'model.options={json.dumps(model['options'])}'")
    if model["input_shape"] != [32, 32, 1]:
        sets.append(f"model.input_shape=[{','.join(map(str, model['input_shape']))}]")
    return (f"mobilenets train --config experiments/fashion_mnist_qat.yaml "
            f"--workdir runs/{run.name}_qat --set {' '.join(sets)}")


def experiment_name(command, run):
    """The experiment file's stem in a run's command (`--config experiments/<stem>.yaml`)."""
    words = shlex.split(command)
    if "--config" in words:
        return pathlib.PurePath(words[words.index("--config") + 1]).stem
    return run.name


def row(run):
    """The CSV row of the run directory `run` (None if it is not finished)."""
    metrics, report = read(run / "metrics.json"), read(run / "export/report.json")
    if metrics is None or report is None or not (run / "config.yaml").is_file():
        return None
    config = yaml.safe_load((run / "config.yaml").read_text())
    model = config["model"]
    counts = profile(build_model(model["name"], alpha=model["alpha"],
                                 input_shape=tuple(model["input_shape"]), num_classes=10,
                                 **model["options"]))
    int8 = report["files"]["model_int8.tflite"]
    qat_run = run.with_name(run.name + "_qat")
    qat, qat_metrics = read(qat_run / "export/report.json"), read(qat_run / "metrics.json")
    qat = qat and qat["files"]["model_qat_int8.tflite"]
    validation = metrics.get("validation", {}).get("top1")
    finished = datetime.date.fromtimestamp((run / "metrics.json").stat().st_mtime)
    machine = provenance.machine()
    made = provenance.run_provenance(run)
    command = made["command"] or f"mobilenets train --config experiments/{run.name}.yaml"
    return {
        "run": run.name, "experiment": experiment_name(command, run),
        "seed": str(made["seed"]), "model": model_words(model),
        "input": "x".join(map(str, model["input_shape"])),
        "params_m": f"{counts['params'] / 1e6:.2f}", "macs_m": f"{counts['macs'] / 1e6:.1f}",
        "training": f"{metrics['epochs']} epochs, {augmentation(config['data'])}"
                    + (f", EMA {config['train']['ema_decay']:g}"
                       if config["train"].get("ema_decay") else ""),
        "hours": f"{metrics['train_seconds'] / 3600:.2f}",
        "validation_top1": "" if validation is None else f"{validation:.4f}",
        "float_top1": f"{metrics['top1']:.4f}", "ptq_int8_top1": f"{int8['top1']:.4f}",
        "ptq_agreement": f"{int8['agreement']:.4f}",
        "qat_int8_top1": f"{qat['top1']:.4f}" if qat else "",
        "qat_agreement": f"{qat['agreement']:.4f}" if qat else "",
        "qat_epochs": str(qat_metrics["epochs"]) if qat else "",
        "int8_mb": f"{int8['size_mb']:.2f}", "int8_ms": f"{int8['median_latency_ms']:.3f}",
        "command": command,
        "qat_command": qat_command(run, model) if qat else "",
        "date": finished.isoformat(), "commit": ", ".join(made["commits"]) or "unknown",
        "machine": f"{machine['cpu']} ({machine['cores']} cores)",
    }


def load_csv(path):
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def merged(rows, new_rows):
    """`rows` with each of `new_rows` replacing the row of its run (or added, in run order)."""
    by_run = {r["run"]: r for r in rows}
    by_run.update({r["run"]: r for r in new_rows})
    return [by_run[name] for name in sorted(by_run)]


def write_csv(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: r.get(key, "") for key in COLUMNS} for r in rows)


def groups(rows):
    """The rows by experiment, in run order (an older row without an experiment is its own)."""
    out = {}
    for r in rows:
        out.setdefault(r.get("experiment") or r["run"], []).append(r)
    return out


def mean(rows, key):
    return provenance.spread(r[key] for r in rows)["mean"]


def top1(rows, key):
    """An experiment's top-1: its one run's, or its seeds' "mean ± sample sd"."""
    if len(rows) == 1:
        return rows[0][key] or "-"
    if not all(r[key] for r in rows):
        return "-"
    figures = provenance.spread(r[key] for r in rows)
    return f"{figures['mean']:.4f} ± {figures['sd']:.4f}"


def int8_cell(rows, key, agreement, reference="float_top1"):
    """"0.9313 (+0.08); 99.3%": an int8 top-1 (mean over seeds), its difference to the float
    top-1 in points, and the agreement with the float model."""
    if not all(r[key] for r in rows):
        return None
    difference = 100 * (mean(rows, key) - mean(rows, reference))
    return f"{top1(rows, key)} ({difference:+.2f}); {100 * mean(rows, agreement):.1f}%"


def label(name, rows):
    """The table's first cell: the run, or the experiment and its seeds."""
    if not rows[0].get("experiment"):
        return rows[0]["run"]
    seeds = ", ".join(r["seed"] for r in rows)
    return f"{name} (seed{'s' if len(rows) > 1 else ''} {seeds})"


def markdown(rows):
    """The table (one line per experiment), then how each run was made."""
    lines = [
        "# Fashion-MNIST results",
        "",
        "Written by `python benchmarks/results_table.py` from results/fashion_mnist.csv. Top-1 on "
        "the 10,000 test images, scored once after training; validation top-1 on the images a "
        "run held out of training, where it did. An experiment run with several seeds shows "
        "their mean ± sample standard deviation, each seed's figures below the table. int8 "
        "differences are to the float top-1, agreement is the share of test images where the "
        "int8 file and its Keras model agree on the class. Latency: the PTQ int8 file, LiteRT "
        "with XNNPACK, 1 thread, batch 1.",
        "",
    ]
    selected = [r for r in rows if r["validation_top1"]]
    if selected:  # the choice between runs is made on validation, never on the test split
        best = max(selected, key=lambda r: float(r["validation_top1"]))
        lines += [f"Best model, chosen on validation: **{best['run']}** ({best['model']}, "
                  f"{best['input']}), validation top-1 {best['validation_top1']}; test top-1 "
                  f"{best['float_top1']} float, {best['ptq_int8_top1']} PTQ int8.", ""]
    lines += [
        "| run | model | input | params | MACs | validation top-1 | float top-1 | PTQ int8 top-1 "
        "(agreement) | QAT int8 top-1 (agreement) | int8 size | int8 latency | training |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in groups(rows).items():
        first = runs[0]
        qat = int8_cell(runs, "qat_int8_top1", "qat_agreement")
        qat = f"{qat}, {first['qat_epochs']} ep" if qat else "-"
        hours = f"{mean(runs, 'hours'):.1f} h" + (" each" if len(runs) > 1 else "")
        lines.append(
            f"| {label(name, runs)} | {first['model']} | {first['input']} | "
            f"{first['params_m']}M | {first['macs_m']}M | {top1(runs, 'validation_top1')} | "
            f"{top1(runs, 'float_top1')} | {int8_cell(runs, 'ptq_int8_top1', 'ptq_agreement')} | "
            f"{qat} | {first['int8_mb']} MB | {mean(runs, 'int8_ms'):.3f} ms | "
            f"{first['training']}, {hours} |")
    lines += ["", "## How each run was made", "",
              "Each command rebuilds the run directory from a clone at the commit named.", ""]
    for runs in groups(rows).values():
        for r in runs:
            figures = (f"seed {r['seed']}: validation {r['validation_top1'] or '-'}, float "
                       f"{r['float_top1']}, PTQ int8 {r['ptq_int8_top1']}; "
                       if len(runs) > 1 else "")
            lines.append(f"- **{r['run']}** ({figures}{r['date']}, commit {r['commit']}, "
                         f"{r['machine']}): `{r['command']}`"
                         + (f"; QAT: `{r['qat_command']}`" if r["qat_command"] else ""))
    return "\n".join(lines) + "\n"


def plot(rows, png):
    """Top-1 (float and PTQ int8) against the int8 file's latency, one point per experiment
    (its seeds' mean)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for runs in groups(rows).values():
        ms, float_top1 = mean(runs, "int8_ms"), mean(runs, "float_top1")
        int8 = mean(runs, "ptq_int8_top1")
        axes.plot([ms, ms], [int8, float_top1], color="0.7", zorder=1)
        axes.scatter([ms], [float_top1], color="tab:blue", zorder=2)
        axes.scatter([ms], [int8], color="tab:orange", marker="x", zorder=2)
        axes.annotate(f"{runs[0]['model']} {runs[0]['input'].split('x')[0]}px",
                      (ms, float_top1), fontsize=7, xytext=(4, 2), textcoords="offset points")
    axes.scatter([], [], color="tab:blue", label="float (Keras)")
    axes.scatter([], [], color="tab:orange", marker="x", label="PTQ int8 file")
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.margins(x=0.15)
    axes.set_xlabel("int8 latency, ms (LiteRT, XNNPACK, 1 thread)")
    axes.set_ylabel("Fashion-MNIST test top-1")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(png, dpi=120)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=pathlib.Path,
                        help="finished run directories to add or update")
    parser.add_argument("--results", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--drop", nargs="+", default=[], metavar="RUN",
                        help="rows to remove (a run whose directory is gone, superseded by "
                             "newer seeds)")
    args = parser.parse_args()
    new_rows = []
    for run in args.runs:
        new = row(run)
        if new is None:
            sys.exit(f"{run}: not a finished run (no metrics.json, export/report.json or "
                     "config.yaml)")
        new_rows.append(new)
        curve = run / "training_curve.png"
        if curve.is_file():  # the run's own plot of history.csv
            (args.results / "curves").mkdir(exist_ok=True)
            shutil.copyfile(curve, args.results / "curves" / f"{run.name}.png")
    table = args.results / "fashion_mnist.csv"
    rows = [r for r in merged(load_csv(table), new_rows) if r["run"] not in args.drop]
    write_csv(table, rows)
    (args.results / "fashion_mnist.md").write_text(markdown(rows))
    plot(rows, args.results / "fashion_mnist.png")
    print(markdown(rows))


if __name__ == "__main__":
    main()
