"""benchmarks/results_table.py: Fashion-MNIST rows read from run directories, kept in a CSV."""

import csv
import datetime
import importlib.util
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "results_table.py"
spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)


@pytest.mark.slow  # the shared end-to-end run
def test_row_reads_a_finished_run(run):
    _, workdir = run
    metrics = json.loads((workdir / "metrics.json").read_text())
    int8 = json.loads((workdir / "export/report.json").read_text())["files"]["model_int8.tflite"]
    r = results_table.row(workdir)
    assert set(r) == set(results_table.COLUMNS)
    assert r["run"] == "work" and r["model"] == "mobilenet_v2 0.35" and r["input"] == "32x32x1"
    assert r["experiment"] == "work" and r["seed"] == "42"  # made from Python: no command
    assert r["float_top1"] == f"{metrics['top1']:.4f}"
    assert r["ptq_int8_top1"] == f"{int8['top1']:.4f}"
    assert r["ptq_agreement"] == f"{int8['agreement']:.4f}"
    assert r["validation_top1"] == ""  # the tiny run holds nothing out
    assert r["qat_int8_top1"] == "" and r["qat_command"] == ""  # no work_qat beside it
    assert r["training"] == "2 epochs, flip_crop, EMA 0.9"
    assert float(r["hours"]) == pytest.approx(metrics["train_seconds"] / 3600, abs=0.005)
    assert r["command"] == "mobilenets train --config experiments/work.yaml"
    assert r["date"] == datetime.date.today().isoformat()
    assert "cores" in r["machine"] and r["commit"]


def test_row_skips_an_unfinished_run(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    assert results_table.row(tmp_path) is None


def test_qat_command_names_the_float_model_and_what_differs_from_the_qat_config():
    model = {"name": "mobilenet_v4", "options": {"variant": "conv_small"},
             "input_shape": [64, 64, 1]}
    assert results_table.qat_command(pathlib.Path("runs/fm_v4"), model) == (
        "mobilenets train --config experiments/fashion_mnist_qat.yaml --workdir runs/fm_v4_qat "
        "--set model.name=mobilenet_v4 model.init_from=runs/fm_v4/model.keras "
        "'model.options={\"variant\": \"conv_small\"}' model.input_shape=[64,64,1]")


def fake_row(run, top1="0.9000"):
    return {**{key: "" for key in results_table.COLUMNS}, "run": run, "model": f"{run} 1",
            "input": "32x32x1", "params_m": "1.00", "macs_m": "2.0", "training": "1 epochs, flip",
            "hours": "0.10", "float_top1": top1, "ptq_int8_top1": "0.8950",
            "ptq_agreement": "0.9900", "int8_mb": "1.00", "int8_ms": "0.100",
            "command": f"mobilenets train --config experiments/{run}.yaml",
            "date": "2026-12-02", "commit": "abc1234", "machine": "some CPU (2 cores)"}


def test_a_new_row_replaces_its_run_and_keeps_the_others():
    rows = [fake_row("b"), fake_row("a")]
    out = results_table.merged(rows, [fake_row("b", "0.9500"), fake_row("c")])
    assert [(r["run"], r["float_top1"]) for r in out] == [
        ("a", "0.9000"), ("b", "0.9500"), ("c", "0.9000")]


def test_markdown_gives_differences_in_points_and_each_rows_provenance():
    qat = {**fake_row("q"), "qat_int8_top1": "0.9010", "qat_agreement": "0.9950",
           "qat_epochs": "3", "qat_command": "mobilenets train --config experiments/x.yaml"}
    text = results_table.markdown([fake_row("a"), qat])
    assert "| a | a 1 | 32x32x1 | 1.00M | 2.0M | - | 0.9000 | 0.8950 (-0.50); 99.0% | - |" in text
    assert "chosen on validation" not in text  # no run held images out
    assert "0.9010 (+0.10); 99.5%, 3 ep" in text
    assert ("- **a** (2026-12-02, commit abc1234, some CPU (2 cores)): "
            "`mobilenets train --config experiments/a.yaml`") in text


def test_an_experiments_seeds_are_one_line_with_their_mean_and_spread():
    seeds = [{**fake_row(f"e_s{seed}", top1), "experiment": "e", "seed": str(seed),
              "validation_top1": validation, "ptq_int8_top1": int8, "hours": hours,
              "int8_ms": ms, "command": f"mobilenets train --set train.seed={seed}"}
             for seed, top1, validation, int8, hours, ms in [
                 (42, "0.9400", "0.9500", "0.9390", "2.00", "0.100"),
                 (43, "0.9500", "0.9550", "0.9480", "3.00", "0.200"),
                 (44, "0.9450", "0.9600", "0.9460", "4.00", "0.300")]]
    text = results_table.markdown([fake_row("a")] + seeds)
    assert ("| e (seeds 42, 43, 44) | e_s42 1 | 32x32x1 | 1.00M | 2.0M | 0.9550 ± 0.0050 | "
            "0.9450 ± 0.0050 | 0.9443 ± 0.0047 (-0.07); 99.0% | - | 1.00 MB | 0.200 ms | "
            "1 epochs, flip, 3.0 h each |") in text
    assert ("- **e_s43** (seed 43: validation 0.9550, float 0.9500, PTQ int8 0.9480; "
            "2026-12-02, commit abc1234, some CPU (2 cores)): "
            "`mobilenets train --set train.seed=43`") in text
    assert "| a | a 1 |" in text  # a row without an experiment stays as it was
    # the best single run on validation, never the best on test
    assert "Best model, chosen on validation: **e_s44**" in text


def test_markdown_names_the_best_run_by_validation_not_by_test():
    rows = [{**fake_row("a", "0.9500"), "validation_top1": "0.9400"},
            {**fake_row("b", "0.9300"), "validation_top1": "0.9450"}, fake_row("c", "0.9600")]
    assert ("Best model, chosen on validation: **b** (b 1, 32x32x1), validation top-1 0.9450; "
            "test top-1 0.9300 float, 0.8950 PTQ int8.") in results_table.markdown(rows)


@pytest.mark.slow  # the shared end-to-end run
def test_main_adds_a_run_to_the_results_files(run, tmp_path, monkeypatch):
    _, workdir = run
    results_table.write_csv(tmp_path / "fashion_mnist.csv", [fake_row("older")])
    monkeypatch.setattr(sys, "argv", ["results_table.py", str(workdir), "--results",
                                      str(tmp_path)])
    results_table.main()
    with (tmp_path / "fashion_mnist.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run"] for r in rows] == ["older", "work"]
    table = (tmp_path / "fashion_mnist.md").read_text()
    assert "| work (seed 42) | mobilenet_v2 0.35 | 32x32x1 |" in table
    assert (tmp_path / "fashion_mnist.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "curves" / "work.png").read_bytes() == (
        workdir / "training_curve.png").read_bytes()


def test_drop_removes_a_superseded_row(tmp_path, monkeypatch):
    results_table.write_csv(tmp_path / "fashion_mnist.csv", [fake_row("old"), fake_row("kept")])
    monkeypatch.setattr(sys, "argv", ["results_table.py", "--results", str(tmp_path),
                                      "--drop", "old"])
    results_table.main()
    assert [r["run"] for r in results_table.load_csv(tmp_path / "fashion_mnist.csv")] == ["kept"]


def test_main_refuses_an_unfinished_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["results_table.py", str(tmp_path)])
    with pytest.raises(SystemExit, match="not a finished run"):
        results_table.main()


def test_the_committed_table_is_the_markdown_of_the_committed_csv():
    rows = results_table.load_csv(ROOT / "results" / "fashion_mnist.csv")
    assert rows and all(r["command"] and r["date"] and r["commit"] for r in rows)
    assert (ROOT / "results" / "fashion_mnist.md").read_text() == results_table.markdown(rows)
