"""`python -m mobilenets` as a user runs it."""

import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "mobilenets", *args], capture_output=True,
                          text=True, timeout=600)


def test_models_table_json():
    result = run("models", "--json", "--name", "shufflenet_v2")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["options"]["alpha"] for row in rows] == [0.5, 1.0, 1.5, 2.0]
    one = rows[1]
    assert one["trainable_params"] == 2_278_604 and one["paper_top1"] == 69.4
    assert abs(one["macs"] / 1e6 - one["paper_macs_millions"]) / 146 < 0.03


def test_models_table_text():
    result = run("models", "--name", "mobilenet_v1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["model", "options", "input", "params"]
    assert len(lines) == 5 and "4.25M" in lines[1] and "70.6%" in lines[1]


def test_unknown_model_is_a_user_error():
    result = run("models", "--name", "mobilenet_v4")
    assert result.returncode == 2
    assert "unknown model(s) mobilenet_v4" in result.stderr
    assert "Traceback" not in result.stderr
