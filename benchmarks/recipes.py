"""Distillation and RandAugment, measured: a MobileNetV3-Small student on Fashion-MNIST at
32x32 trained for the same epochs plain, with a teacher, and with RandAugment.

    python benchmarks/recipes.py [--teacher runs/fashion_mnist_recipe/model.keras]
                                 [--workdir runs/recipes]

Runs `mobilenets train` on experiments/fashion_mnist_student.yaml and its two variants
(_distilled: train.teacher set to --teacher; _randaugment), each choosing its best model on
5,000 held-out training images and scored once on the 10,000 test images, float and PTQ
int8; scores the teacher on the same test images; writes results/recipes.json and
results/recipes.md with the commands, date, commit and machine. Needs the Debian package
dataset-fashion-mnist. About 1.5 hours on 2 cores.
"""

import argparse
import json
import pathlib
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402

RUNS = {  # name: (experiment, what differs from the plain student)
    "plain": ("fashion_mnist_student.yaml", "flips (the shared recipe)"),
    "distilled": ("fashion_mnist_student_distilled.yaml",
                  "+ teacher (weight 0.5, temperature 2)"),
    "randaugment": ("fashion_mnist_student_randaugment.yaml", "+ RandAugment 2 ops, magnitude 9"),
}


def run(command):
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, check=True, text=True, stdout=subprocess.PIPE)
    return " ".join(command), done.stdout


def markdown(result):
    lines = [f"# {result['measurement']}", "",
             f"`{result['command']}` on {result['date']}, commit {result['commit']}, "
             f"{result['machine']['cpu']} ({result['machine']['cores']} cores).", "",
             f"Teacher: `{result['teacher']['path']}`, test top-1 "
             f"{result['teacher']['top1']:.4f}.", "",
             "| student run | validation top-1 | test top-1 float | test top-1 int8 | "
             "training time |",
             "|---|---|---|---|---|"]
    for name, row in result["runs"].items():
        lines.append(f"| {name}: {row['differs']} | {row['validation_top1']:.4f} | "
                     f"{row['top1']:.4f} | {row['int8_top1']:.4f} | "
                     f"{row['train_seconds'] / 60:.0f} min |")
    lines += ["", "Commands:", ""] + [f"- `{row['command']}`" for row in result["runs"].values()]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="runs/fashion_mnist_recipe/model.keras")
    parser.add_argument("--workdir", default="runs/recipes")
    args = parser.parse_args()
    root = pathlib.Path(args.workdir).resolve()
    experiments = provenance.ROOT / "experiments"
    _, output = run([sys.executable, "-m", "mobilenets", "evaluate", "--config",
                     str(experiments / "fashion_mnist_recipe.yaml"), "--model", args.teacher])
    teacher = {"path": args.teacher, **json.loads(output.strip().splitlines()[-1])}
    rows = {}
    for name, (experiment, differs) in RUNS.items():
        command = [sys.executable, "-m", "mobilenets", "train", "--config",
                   str(experiments / experiment), "--workdir", str(root / name)]
        if name == "distilled":
            command += ["--set", f"train.teacher={args.teacher}"]
        command, _ = run(command)
        metrics = json.loads((root / name / "metrics.json").read_text())
        report = json.loads((root / name / "export" / "report.json").read_text())
        rows[name] = {"differs": differs, "top1": metrics["top1"],
                      "validation_top1": metrics["validation"]["top1"],
                      "int8_top1": report["files"]["model_int8.tflite"]["top1"],
                      "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"],
                      "train_cpu_ms_per_image": metrics["train_cpu_ms_per_image"],
                      "command": command}
    result = {**provenance.stamp(), "measurement": __doc__.splitlines()[0], "teacher": teacher,
              "runs": rows}
    results = provenance.ROOT / "results"
    (results / "recipes.json").write_text(json.dumps(result, indent=1) + "\n")
    (results / "recipes.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
