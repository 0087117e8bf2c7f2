"""benchmarks/provenance.py: results files carry their command, date, commit and machine, and
their rows as CSV and Markdown tables."""

import csv
import importlib.util
import json
import pathlib

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "provenance.py"
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
            {"model": "a", "median_ms": "1.23", "ops": "-"},
            {"model": "b", "median_ms": "2.00", "ops": "GELU MUL"}]
    text = (tmp_path / "x.md").read_text()
    assert ("`python benchmarks/x.py --runs 3` on 2026-12-02, commit abc1234, Some CPU (2 cores; "
            "AVX-512 True, VNNI False; TensorFlow 2.21.0, Keras 3.15.1).") in text
    assert "| model | median_ms | ops |\n|---|---|---|\n| a | 1.23 | - |" in text
    # nested medians become columns; the rounds' raw samples stay in the JSON only
    assert "| size | median / ours / img_per_s |\n|---|---|\n| 160 | 60.00 |" in text
