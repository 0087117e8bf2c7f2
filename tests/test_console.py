"""A clean console: the command prints its own log, and the native libraries' lines only with
--verbose or when something fails."""

import os
import subprocess
import sys

import pytest

from mobilenets import console

NATIVE = ("I0000", "E0000", "W0000", "absl::InitializeLog", "oneDNN custom operations",
          "cuda drivers", "cuInit", "fully_quantize:", "contains input name(s)",
          "Created TensorFlow Lite XNNPACK delegate")


def test_native_lines_are_held_back_unless_the_block_fails(capfd, monkeypatch):
    monkeypatch.delenv(console.VERBOSE, raising=False)
    with console.quiet_native():
        os.write(2, b"I0000 a native line\n")
    with pytest.raises(RuntimeError), console.quiet_native():
        os.write(2, b"what went wrong, in native words\n")
        raise RuntimeError("failed")
    monkeypatch.setenv(console.VERBOSE, "1")
    with console.quiet_native():
        os.write(2, b"shown with --verbose\n")
    err = capfd.readouterr().err
    assert "a native line" not in err
    assert "what went wrong, in native words" in err and "shown with --verbose" in err


@pytest.mark.slow
def test_a_run_prints_only_its_own_lines_and_everything_with_verbose(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {name: mobilenet_v2, alpha: 0.35, input_shape: [32, 32, 1]}\n"
                      "data: {train_limit: 64, eval_limit: 64, full_test_set: false}\n"
                      "train: {batch_size: 32}\nexport: {modes: [int8], max_drop: 100, "
                      "calibration_samples: 8}\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", console.VERBOSE)}

    def run(*flags):
        done = subprocess.run([sys.executable, "-m", "mobilenets", "train", "--config",
                               str(config), "--workdir", str(tmp_path / "run"), *flags],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr

    quiet = run()
    assert [line for line in quiet.splitlines() if any(n in line for n in NATIVE)] == []
    for ours in ("exporting int8", "model_int8.tflite: top1", '{"top1": '):
        assert ours in quiet
    loud = run("--verbose")
    assert "oneDNN custom operations" in loud and "fully_quantize:" in loud
