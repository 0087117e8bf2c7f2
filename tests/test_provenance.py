"""benchmarks/provenance.py: results files carry their command, date, commit and machine, and
their rows as CSV and Markdown tables."""

import csv
import importlib.util
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "provenance.py"
spec = importlib.util.spec_from_file_location("provenance", SCRIPT)
provenance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(provenance)

MACHINE = {"cpu": "Some CPU", "cores": 2, "avx512": True, "vnni": False, "tensorflow": "2.21.0",
           "keras": "3.15.1"}


def test_save_writes_json_and_a_table_per_part(tmp_path):
    results = {"command": "python benchmarks/x.py --runs 3", "date": "2026-12-02",
               "commit": "abc1234", "machine": MACHINE,
               "latency": [{"model": "a", "median_ms": 1.23456, "ops": []},
                           {"model": "b", "median_ms": 2.0, "ops": ["GELU", "MUL"]}],
               "training": [{"size": 160, "runs": [[1.0, 2.0]],
                             "median": {"ours": {"img_per_s": 60.0}}}]}
    provenance.save(results, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == results
    with (tmp_path / "x_latency.csv").open(newline="") as handle:
        assert list(csv.DictReader(handle)) == [
            {"model": "a", "median_ms": "1.2346", "ops": "-"},
            {"model": "b", "median_ms": "2", "ops": "GELU MUL"}]
    text = (tmp_path / "x.md").read_text()
    assert ("`python benchmarks/x.py --runs 3` on 2026-12-02, commit abc1234, Some CPU (2 cores; "
            "AVX-512 True, VNNI False; TensorFlow 2.21.0, Keras 3.15.1).") in text
    assert "| model | median_ms | ops |\n|---|---|---|\n| a | 1.2346 | - |" in text
    # nested medians become columns; the rounds' raw samples stay in the JSON only
    assert "| size | median / ours / img_per_s |\n|---|---|\n| 160 | 60 |" in text


def test_title_is_the_docstrings_first_paragraph_whole():
    doc = "Transfer learning, measured: a model\npretrained, then fine-tuned.\n\n    python x.py\n"
    assert provenance.title(doc) == (
        "Transfer learning, measured: a model pretrained, then fine-tuned.")


def test_clone_path_names_experiments_and_other_runs_files_as_a_clone_has_them():
    assert (provenance.clone_path("/work/main/longrun/src/experiments/fashion_mnist_recipe.yaml")
            == "experiments/fashion_mnist_recipe.yaml")
    assert (provenance.clone_path("/work/main/experiments/base/fashion_mnist.yaml")
            == "experiments/base/fashion_mnist.yaml")
    assert provenance.clone_path("/work/main/longrun/recipe_s42/model.keras") == (
        "runs/recipe_s42/model.keras")
    assert provenance.clone_path("runs/a/model.keras") == "runs/a/model.keras"
    assert provenance.clone_path("0.5") == "0.5"


def write_run(run, sessions, seed=43):
    run.mkdir()
    (run / "config.yaml").write_text(f"train:\n  seed: {seed}\n")
    if sessions is not None:
        (run / "sessions.json").write_text(json.dumps({"sessions": sessions}))


def test_run_provenance_reads_each_sessions_commit_and_rebuilds_the_command(tmp_path):
    command = ("/work/main/longrun/src/mobilenets/__main__.py train --workdir student_s43 "
               "--config /work/main/longrun/src/experiments/fashion_mnist_student_distilled.yaml "
               "--set train.seed=43 train.teacher=/work/main/longrun/recipe_s42/model.keras")
    write_run(tmp_path / "student_s43", [{"command": command, "commit": "aa586da"},
                                         {"command": command, "commit": "0c62cd0+changes"},
                                         {"command": command, "commit": "aa586da"}])
    assert provenance.run_provenance(tmp_path / "student_s43") == {
        "commits": ["aa586da", "0c62cd0+changes"], "seed": 43,
        "command": "mobilenets train --workdir runs/student_s43 --config "
                   "experiments/fashion_mnist_student_distilled.yaml --set train.seed=43 "
                   "train.teacher=runs/recipe_s42/model.keras"}


def test_run_provenance_of_a_run_not_made_by_the_train_command(tmp_path):
    write_run(tmp_path / "old", None, seed=7)  # before sessions.json existed
    assert provenance.run_provenance(tmp_path / "old") == {"commits": [], "seed": 7,
                                                           "command": None}
    write_run(tmp_path / "python", [{"command": "pytest -x tests", "commit": None}])
    assert provenance.run_provenance(tmp_path / "python") == {
        "commits": ["unknown"], "seed": 43, "command": None}


def test_spread_gives_the_mean_and_sample_standard_deviation():
    figures = provenance.spread(["0.90", 0.92, 0.94])
    assert figures["mean"] == pytest.approx(0.92) and figures["sd"] == pytest.approx(0.02)
    assert (figures["min"], figures["max"], figures["n"]) == (0.90, 0.94, 3)
    assert provenance.spread([0.9])["sd"] == 0.0


# A machine's own folder in a results file: what a reader of a clone cannot follow.
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:work|tmp|root|home|srv|opt|var|mnt|data)/\S*")


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "results").rglob("*")
                                        if p.suffix in (".md", ".json", ".csv")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_results_name_no_folder_of_the_machine_that_made_them(path):
    """Commands, configs and paths in results/ are as run from a clone (`provenance.portable`):
    a run directory relative to the checkout, an outside folder by its last part."""
    found = MACHINE_PATH.findall(path.read_text())
    assert not found, f"{path.name} names this machine's folders: {found[:3]}"
