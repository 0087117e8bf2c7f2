"""What every measured result carries: the command, the date, the commit and the machine; and
the results files that carry it (JSON, with CSV and Markdown tables beside it)."""

import csv
import json
import os
import pathlib
import platform
import shlex
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def commit():
    """The checkout's commit, with "+changes" when its files differ from it."""
    from mobilenets.version import commit as checkout_commit

    return checkout_commit(ROOT) or "unknown"


def machine():
    """The CPU (model, cores, AVX-512 and VNNI: int8 speed depends on them) and the versions."""
    flags, model = set(), platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    import keras
    import tensorflow as tf

    return {"cpu": model, "cores": os.cpu_count(), "avx512": "avx512f" in flags,
            "vnni": "avx512_vnni" in flags, "tensorflow": tf.__version__,
            "keras": keras.__version__}


def portable(argument):
    """A command-line argument as a clone's reader can use it: a path inside the checkout
    relative to it, another absolute path as its last part (a folder of this machine's, which
    the results file describes), anything else as it is."""
    if not argument.startswith("/"):
        return argument
    path = pathlib.Path(argument).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def stamp():
    """{"command", "date", "commit", "machine"} for a results file: the command as run from a
    clone (`portable` arguments)."""
    command = shlex.join(["python", portable(str(pathlib.Path(sys.argv[0]).resolve())),
                          *map(portable, sys.argv[1:])])
    return {"command": command, "date": time.strftime("%Y-%m-%d"), "commit": commit(),
            "machine": machine()}


def title(doc):
    """A results file's title: the first paragraph of its script's docstring, whole."""
    return " ".join(doc.split("\n\n")[0].split())


def clone_path(value):
    """A path of this machine's in a run's recorded command, as a clone's reader would name it:
    an experiment file from experiments/, anything else (a teacher's model.keras, another run's
    file) in runs/<its folder>/<file>; a relative path or a plain value as it is."""
    if not value.startswith("/"):
        return value
    parts = pathlib.PurePath(value).parts
    if "experiments" in parts:
        last = len(parts) - 1 - parts[::-1].index("experiments")
        return "/".join(parts[last:])
    return "/".join(("runs", *parts[-2:]))


def run_provenance(run):
    """What a finished run directory says of how it was made: the commits its sessions ran at
    (sessions.json, in order, each once; empty for a run made before sessions.json existed),
    the seed of its config.yaml, and its first session's `mobilenets train` command as run
    from a clone at that commit, the run directory in runs/<name> (None where the run was
    not made by that command, e.g. from Python)."""
    import yaml

    run = pathlib.Path(run)
    sessions_file = run / "sessions.json"
    sessions = (json.loads(sessions_file.read_text())["sessions"] if sessions_file.is_file()
                else [])
    config = yaml.safe_load((run / "config.yaml").read_text())
    made = {"commits": list(dict.fromkeys(s["commit"] or "unknown" for s in sessions)),
            "seed": config["train"]["seed"], "command": None}
    words = shlex.split(sessions[0]["command"]) if sessions else []
    if "train" not in words:
        return made
    command = ["mobilenets", "train"]
    words = words[words.index("train") + 1:]
    for previous, word in zip(["train", *words], words):
        if previous == "--workdir":
            command.append(f"runs/{run.resolve().name}")
        elif "=" in word and not word.startswith("-"):
            key, value = word.split("=", 1)
            command.append(f"{key}={clone_path(value)}")
        else:
            command.append(clone_path(word))
    return {**made, "command": shlex.join(command)}


def spread(values):
    """{"mean", "sd" (sample standard deviation; 0 for one value), "min", "max", "n"}."""
    import statistics

    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values), "n": len(values), "min": min(values),
            "max": max(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def flat(row, prefix=""):
    """A row of nested dicts as one level, keys joined by " / "; raw lists of lists (each
    round's samples) are left to the JSON."""
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key} / "))
        elif not (isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value)):
            out[f"{prefix}{key}"] = value
    return out


def flat_tables(results):
    """The parts of `results` that are lists of rows, each row flattened."""
    return {name: [flat(r) for r in rows] for name, rows in results.items()
            if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows)}


def cell(value):
    """A table cell: a number to 4 decimals, trailing zeros dropped (top-1 0.8786, 630.8 kB),
    one too small for them in scientific notation (2.4e-07), a list as its items."""
    if isinstance(value, float):
        if value and abs(value) < 5e-5:
            return f"{value:.1e}"
        return f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, list):
        return " ".join(map(str, value)) or "-"
    return str(value)


def save(results, json_path):
    """Writes `results` (a `stamp()` plus parts) to `json_path`, and beside it, for each part
    that is a list of flat rows, `<stem>_<part>.csv`, and `<stem>.md`: the provenance and a
    table per part."""
    json_path = pathlib.Path(json_path)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    machine = results["machine"]
    lines = [f"# {json_path.stem}", "",
             f"`{results['command']}` on {results['date']}, commit {results['commit']}, "
             f"{machine['cpu']} ({machine['cores']} cores; AVX-512 {machine['avx512']}, VNNI "
             f"{machine['vnni']}; TensorFlow {machine['tensorflow']}, Keras {machine['keras']})."]
    for name, rows in flat_tables(results).items():
        columns = list(dict.fromkeys(key for r in rows for key in r))
        with json_path.with_name(f"{json_path.stem}_{name}.csv").open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: cell(r.get(key, "")) for key in columns} for r in rows)
        lines += ["", f"## {name}", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(r.get(key, "")) for key in columns) + " |"
                  for r in rows]
    json_path.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":  # python benchmarks/provenance.py results/x.json ...: rewrite the tables
    for path in sys.argv[1:]:
        save(json.loads(pathlib.Path(path).read_text()), path)
