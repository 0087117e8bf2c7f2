"""scripts/arm64_verify.py: a run's exported files on LiteRT's aarch64 kernels under qemu
emulation, against x86. Where this machine cannot emulate (not root, no binfmt_misc entry, no
arm64 root filesystem: scripts/arm64_root.sh makes them), the end-to-end test skips, naming the
reason."""

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "arm64_verify.py"
ROOT = pathlib.Path("/srv/arm64")


def script():
    spec = importlib.util.spec_from_file_location("arm64_verify", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_machine_that_cannot_emulate_is_told_why(tmp_path):
    reason = script().cannot_emulate(tmp_path / "no-root")
    assert reason is not None
    assert ("needs root" in reason or "binfmt_misc" in reason
            or f"no arm64 root filesystem with LiteRT at {tmp_path / 'no-root'}" in reason)
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--root",
                             str(tmp_path / "no-root")], capture_output=True, text=True)
    assert result.returncode == 3
    assert f"arm64 verification skipped: {reason}" in result.stderr


@pytest.mark.slow  # the shared end-to-end run, and emulation
def test_the_runs_files_on_arm64_agree_with_x86_on_xnnpack(run, tmp_path):
    reason = script().cannot_emulate(ROOT)
    if reason:
        pytest.skip(f"cannot emulate aarch64 here: {reason}")
    copy = tmp_path / "run"
    shutil.copytree(run[1], copy)
    subprocess.run([sys.executable, str(SCRIPT), str(copy), "--limit", "64", "--cpus",
                    "cortex-a76"], check=True, capture_output=True)
    entry = json.loads((copy / "export" / "report.json").read_text())["arm64"]
    assert entry["emulator"].startswith("qemu-aarch64 version")
    assert set(entry["files"]) == {"model_float32.tflite", "model_int8.tflite"}
    for result in entry["files"].values():
        arm = result["cortex-a76"]
        assert result["images"] == 64
        assert arm["xnnpack_partitions"] == 1  # XNNPACK applied on ARM (/sys mounted)
        # XNNPACK's top-1 on ARM is x86's (measured: every image of every file so far)
        assert arm["xnnpack"]["top1_agreement_with_x86"] == 1.0
        assert arm["xnnpack"]["max_abs_difference"] < 1e-5
