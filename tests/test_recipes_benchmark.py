"""benchmarks/recipes.py: each arm over seeds, its mean and spread and its difference to the
plain arm, each run's own commit and command."""

import importlib.util
import json
import pathlib

import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
spec = importlib.util.spec_from_file_location("recipes", BENCHMARKS / "recipes.py")
recipes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipes)


def finished_run(root, name, seed, top1, validation, int8):
    run = root / name
    (run / "export").mkdir(parents=True)
    (run / "config.yaml").write_text(f"train:\n  seed: {seed}\n")
    (run / "metrics.json").write_text(json.dumps({
        "top1": top1, "validation": {"top1": validation}, "epochs": 6, "train_seconds": 600}))
    (run / "export" / "report.json").write_text(json.dumps(
        {"files": {"model_int8.tflite": {"top1": int8}}}))
    command = (f"/venv/bin/mobilenets train --workdir {run} --config "
               f"/home/u/src/experiments/fashion_mnist_student.yaml --set train.seed={seed}")
    (run / "sessions.json").write_text(json.dumps(
        {"sessions": [{"command": command, "commit": "aa586da"}]}))
    return recipes.read(run)


def test_read_skips_an_unfinished_run(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    assert recipes.read(tmp_path) is None


def test_each_arm_over_seeds_and_its_difference_to_plain(tmp_path):
    runs = {"plain": [finished_run(tmp_path, f"student_plain_s{s}", s, top1, 0.91, int8)
                      for s, top1, int8 in [(42, 0.900, 0.899), (43, 0.904, 0.901)]],
            "distilled": [finished_run(tmp_path, f"student_distilled_s{s}", s, top1, 0.92, int8)
                          for s, top1, int8 in [(42, 0.910, 0.905), (43, 0.906, 0.907)]]}
    arms = recipes.summary(runs)
    assert arms["plain"]["top1"]["mean"] == pytest.approx(0.902)
    assert arms["plain"]["top1"]["sd"] == pytest.approx(0.004 / 2 ** 0.5)
    assert "points_over_plain" not in arms["plain"]
    assert arms["distilled"]["points_over_plain"] == {
        "validation_top1": 1.0, "top1": 0.6, "int8_top1": 0.6}
    result = {"measurement": "Distillation", "command": "python benchmarks/recipes.py",
              "date": "2026-12-06", "commit": "0c62cd0", "machine": {"cpu": "CPU", "cores": 2},
              "teacher": {"path": "runs/recipe_s42/model.keras", "top1": 0.9446},
              "seeds": [42, 43], "arms": arms, "runs": runs}
    text = recipes.markdown(result)
    assert ("| distilled: + teacher (weight 0.5, temperature 2) | 0.9200 ± 0.0000 | "
            "0.9080 ± 0.0028 | 0.9060 ± 0.0014 | +0.60 | +0.60 |") in text
    assert ("| student_plain_s43 | 43 | 0.9100 | 0.9040 | 0.9010 | 6 epochs, 10 min | "
            "aa586da |") in text
    assert ("- `mobilenets train --workdir runs/student_plain_s42 --config "
            "experiments/fashion_mnist_student.yaml --set train.seed=42`") in text
