"""benchmarks/results_table.py: the README's Fashion-MNIST table, read from run directories."""

import importlib.util
import json
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results_table.py"
spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)


def names(rows):
    return [r["run"] for r in rows]


def test_chain_order_puts_each_stage_after_the_run_it_started_from():
    runs = [("v2", ""), ("v2_64", "v2"), ("v2_64_clean", "v2_64_erase"), ("v2_64_erase", "v2_64"),
            ("v2_crop", ""), ("v3", "elsewhere"), ("v2_64_flip", "v2_64")]
    rows = [{"run": run, "from": start} for run, start in runs]
    assert names(results_table.chain_order(rows)) == [
        "v2", "v2_64", "v2_64_erase", "v2_64_clean", "v2_64_flip", "v2_crop", "v3"]


def test_chain_order_keeps_every_row_of_a_cycle_once():
    rows = [{"run": "a", "from": "b"}, {"run": "b", "from": "a"}, {"run": "c", "from": ""}]
    assert names(results_table.chain_order(rows)) == ["c", "a", "b"]


def test_row_reads_a_finished_run(run):
    _, workdir = run
    metrics = json.loads((workdir / "metrics.json").read_text())
    int8 = json.loads((workdir / "export/report.json").read_text())["files"]["model_int8.tflite"]
    r = results_table.row(workdir)
    assert r["model"] == "mobilenet_v2 0.35 (work)"
    assert r["input"] == "32x32x1"
    assert r["float"] == metrics["top1"] and r["ptq"] == int8["top1"]
    assert r["epochs"] == 2 and r["augment"] == "flip_crop" and r["from"] == ""
    assert r["qat"] is None  # no work_qat directory beside it
    assert r["hours"] == pytest.approx(metrics["train_seconds"] / 3600)


def test_row_skips_an_unfinished_run(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    assert results_table.row(tmp_path) is None
