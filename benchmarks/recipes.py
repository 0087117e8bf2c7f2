"""Distillation and RandAugment against a plain student, over seeds (MobileNetV3-Small,
Fashion-MNIST at 32x32, the same epochs).

    python benchmarks/recipes.py --teacher runs/recipe_s42/model.keras --workdir runs
                                 [--seeds 42 43 44] [--arms plain distilled randaugment]

For each arm and seed, trains `<workdir>/student_<arm>_s<seed>` with `mobilenets train` on
experiments/fashion_mnist_student.yaml or its variant (_distilled: train.teacher set to
--teacher; _randaugment) and train.seed; a run directory that already finished is read, not
trained again (runs made by hand with the same command count). Each run chooses its best model
on 5,000 held-out training images and is scored once on the 10,000 test images, float and PTQ
int8. Scores the teacher on the same test images. Writes results/recipes.json and
results/recipes.md: each arm's mean and sample standard deviation over the seeds, its
difference to the plain arm, and each run's figures, the commit it trained at and the command
that rebuilds it from a clone. Needs the Debian package dataset-fashion-mnist. About 15 minutes
per run on 2 cores.
"""

import argparse
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402

ARMS = {  # name: (experiment, what differs from the plain student)
    "plain": ("fashion_mnist_student.yaml", "flips (the shared recipe)"),
    "distilled": ("fashion_mnist_student_distilled.yaml",
                  "+ teacher (weight 0.5, temperature 2)"),
    "randaugment": ("fashion_mnist_student_randaugment.yaml", "+ RandAugment 2 ops, magnitude 9"),
}
FIGURES = ("validation_top1", "top1", "int8_top1")


def read(run):
    """The figures of the finished run directory `run`, or None if it has not finished."""
    metrics, report = run / "metrics.json", run / "export" / "report.json"
    if not (metrics.is_file() and report.is_file()):
        return None
    metrics, report = json.loads(metrics.read_text()), json.loads(report.read_text())
    return {"run": run.name, "validation_top1": metrics["validation"]["top1"],
            "top1": metrics["top1"], "int8_top1": report["files"]["model_int8.tflite"]["top1"],
            "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"],
            **provenance.run_provenance(run)}


def train(run, arm, seed, teacher):
    """Trains `run` (resuming it if it stopped halfway) unless it has finished."""
    if read(run) is not None:
        print(f"{run}: finished, read as it is", flush=True)
        return
    command = [sys.executable, "-m", "mobilenets", "train", "--config",
               str(provenance.ROOT / "experiments" / ARMS[arm][0]), "--workdir", str(run),
               "--set", f"train.seed={seed}"]
    if arm == "distilled":
        command.append(f"train.teacher={teacher}")
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def summary(runs):
    """Each arm's figures over its seeds, and the differences of its means to the plain arm's."""
    arms = {arm: {key: provenance.spread(r[key] for r in rows) for key in FIGURES}
            for arm, rows in runs.items()}
    for arm, figures in arms.items():
        if arm != "plain" and "plain" in arms:
            figures["points_over_plain"] = {
                key: round(100 * (figures[key]["mean"] - arms["plain"][key]["mean"]), 2)
                for key in FIGURES}
    return arms


def cell(figures):
    return f"{figures['mean']:.4f} ± {figures['sd']:.4f}"


def markdown(result):
    seeds = ", ".join(map(str, result["seeds"]))
    lines = [f"# {result['measurement']}", "",
             f"`{result['command']}` on {result['date']}, table written at commit "
             f"{result['commit']}, {result['machine']['cpu']} ({result['machine']['cores']} "
             "cores). Each run's own commit is listed below.", "",
             f"Teacher: `{result['teacher']['path']}`, test top-1 "
             f"{result['teacher']['top1']:.4f}. Seeds {seeds}: mean ± sample standard "
             "deviation; the difference to the plain arm's mean in points.", "",
             "| student | validation top-1 | test top-1 float | test top-1 int8 | "
             "float vs plain | int8 vs plain |",
             "|---|---|---|---|---|---|"]
    for arm, figures in result["arms"].items():
        over = figures.get("points_over_plain")
        lines.append(f"| {arm}: {ARMS[arm][1]} | {cell(figures['validation_top1'])} | "
                     f"{cell(figures['top1'])} | {cell(figures['int8_top1'])} | "
                     + (f"{over['top1']:+.2f} | {over['int8_top1']:+.2f} |" if over
                        else "- | - |"))
    lines += ["", "## Runs", "",
              "| run | seed | validation top-1 | float | int8 | training | commit |",
              "|---|---|---|---|---|---|---|"]
    for rows in result["runs"].values():
        lines += [f"| {r['run']} | {r['seed']} | {r['validation_top1']:.4f} | {r['top1']:.4f} | "
                  f"{r['int8_top1']:.4f} | {r['epochs']} epochs, "
                  f"{r['train_seconds'] / 60:.0f} min | {', '.join(r['commits'])} |"
                  for r in rows]
    lines += ["", "Each run directory rebuilds from a clone at its commit with:", ""]
    lines += [f"- `{r['command']}`" for rows in result["runs"].values() for r in rows]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="runs/recipe_s42/model.keras")
    parser.add_argument("--workdir", default="runs", type=pathlib.Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--results", type=pathlib.Path, default=provenance.ROOT / "results")
    args = parser.parse_args()
    runs = {}
    for arm in args.arms:
        for seed in args.seeds:
            run = args.workdir / f"student_{arm}_s{seed}"
            train(run, arm, seed, args.teacher)
            runs.setdefault(arm, []).append(read(run))
    evaluation = subprocess.run(
        [sys.executable, "-m", "mobilenets", "evaluate", "--config",
         str(provenance.ROOT / "experiments" / "fashion_mnist_recipe.yaml"), "--model",
         args.teacher], check=True, text=True, stdout=subprocess.PIPE).stdout
    teacher = {"path": provenance.portable(args.teacher),
               "top1": json.loads(evaluation.strip().splitlines()[-1])["top1"]}
    result = {**provenance.stamp(), "measurement": provenance.title(__doc__),
              "teacher": teacher, "seeds": args.seeds, "arms": summary(runs), "runs": runs}
    (args.results / "recipes.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.results / "recipes.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
