"""`mobilenets sweep`: the grid, the table, the front, budgets, a phone's timings, and a sweep
spread over two workdirs."""

import json

import pytest

from mobilenets import sweep
from mobilenets.cli import main
from mobilenets.errors import UserError

BASE = """
model: {name: mobilenet_v2}
data: {source: sample, train_limit: 384, eval_limit: 128, holdout: 96, full_test_set: false,
       crop_fraction: 1.0}
train: {epochs: 1, batch_size: 64, optimizer: sgd, learning_rate: 0.05, select: best}
export: {calibration_samples: 8, max_drop: 100}
"""
GRID = """
grid:
  model.alpha: [0.35, 0.5]
  model.input_shape: [[32, 32, 1], [40, 40, 1]]
"""


def test_a_grid_is_the_product_of_its_values_times_its_variants(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text(GRID + "variants:\n  - {model.name: mobilenet_v2}\n"
                    "  - {model.name: mobilenet_v4, model.options: {variant: conv_small}}\n")
    points = sweep.read_grid(grid)
    assert len(points) == 8
    assert points[0] == {"model.name": "mobilenet_v2", "model.alpha": 0.35,
                         "model.input_shape": [32, 32, 1]}
    assert sweep.point_name(points[-1]) == "mobilenet_v4-conv_small-0.5-40x40x1"


@pytest.mark.parametrize("text, message", [
    ("grid:\n  model.alpah: [0.5]\n", r"unknown config key model.alpah \(did you mean "
                                     r"model.alpha\?\)"),
    ("grid:\n  model.alpha: 0.5\n", "each key needs a list of values"),
    ("grid:\n  model.alpha: [-1]\n", "model.alpha must be > 0"),
    ("points: []\n", "expected a mapping with grid:"),
])
def test_a_bad_grid_is_refused_before_anything_trains(tmp_path, text, message):
    grid = tmp_path / "grid.yaml"
    grid.write_text(text)
    with pytest.raises(UserError, match=message):
        sweep.read_grid(grid)


def rows(*points):
    return [{"point": name, "validation_top1": accuracy, "float_top1": 0.0, "int8_ms": ms,
             "int8_mb": mb} for name, accuracy, ms, mb in points]


def test_the_front_keeps_the_points_nothing_beats_on_both():
    table = rows(("slow-good", 0.90, 3.0, 1.0), ("fast-bad", 0.80, 1.0, 1.0),
                 ("slow-bad", 0.80, 3.0, 0.5), ("dominated", 0.79, 2.0, 2.0),
                 ("twin", 0.80, 1.0, 1.0))
    sweep.front(table, "int8_ms")
    assert [r["point"] for r in table if r["front"]] == ["slow-good", "fast-bad", "twin"]
    sweep.front(table, "int8_mb")
    assert [r["point"] for r in table if r["front"]] == ["slow-good", "slow-bad"]


def test_a_phones_timings_are_matched_by_point(tmp_path):
    timings = tmp_path / "phone.csv"
    timings.write_text("file,ms\na-32/export/model_int8.tflite,4.5\nb-40,7\n")
    assert sweep.latencies_from(timings) == {"a-32": 4.5, "b-40": 7.0}
    timings.write_text("file,milliseconds\na,1\n")
    with pytest.raises(UserError, match="line 2: expected columns file,ms"):
        sweep.latencies_from(timings)


@pytest.mark.slow
def test_a_sweep_trains_each_point_once_and_draws_the_front(tmp_path, capsys):
    config, grid = tmp_path / "base.yaml", tmp_path / "grid.yaml"
    config.write_text(BASE)
    grid.write_text(GRID)
    workdir = tmp_path / "sweep"
    assert main(["sweep", "--config", str(config), "--grid", str(grid), "--workdir",
                 str(workdir), "--parallel", "2", "--budget-ms", "1000"]) == 0
    results = json.loads((workdir / "sweep.json").read_text())
    names = {"0.35-32x32x1", "0.35-40x40x1", "0.5-32x32x1", "0.5-40x40x1"}
    assert {r["point"] for r in results["points"]} == names
    for r in results["points"]:
        assert (workdir / r["point"] / "export/model_int8.tflite").is_file()
        assert 0 <= r["validation_top1"] <= 1 and r["int8_ms"] > 0 and r["params_m"] > 0
    assert any(r["front"] for r in results["points"])
    assert results["chosen_on"].startswith("validation top-1")
    assert results["budget"]["best"] in names  # every point is within 1000 ms
    assert (workdir / "sweep.png").stat().st_size > 5000
    assert "| point | model | input" in (workdir / "sweep.md").read_text()
    printed = capsys.readouterr().out

    # Again: nothing is trained, the table is the same; a phone's timings replace ours.
    stamp = (workdir / "0.5-40x40x1/model.keras").stat().st_mtime_ns
    timings = tmp_path / "phone.csv"
    timings.write_text("file,ms\n" + "".join(f"{name},{index + 1}\n" for index, name in
                                             enumerate(sorted(names))))
    assert main(["sweep", "--config", str(config), "--grid", str(grid), "--workdir",
                 str(workdir), "--latency-from", str(timings), "--budget-ms", "1.5"]) == 0
    assert (workdir / "0.5-40x40x1/model.keras").stat().st_mtime_ns == stamp
    again = json.loads((workdir / "sweep.json").read_text())
    assert {r["point"]: r["int8_ms"] for r in again["points"]} == {
        name: index + 1 for index, name in enumerate(sorted(names))}
    assert again["budget"]["best"] == "0.35-32x32x1"  # the only point within 1.5 ms
    assert "measured elsewhere" in again["latency"] and printed

    # Two machines' workdirs, tabulated together.
    (tmp_path / "other").mkdir()
    (workdir / "0.5-40x40x1").rename(tmp_path / "other" / "0.5-40x40x1")
    assert main(["sweep", "--collect", str(workdir), str(tmp_path / "other"), "--workdir",
                 str(tmp_path / "merged")]) == 0
    merged = json.loads((tmp_path / "merged/sweep.json").read_text())
    assert {r["point"] for r in merged["points"]} == names
