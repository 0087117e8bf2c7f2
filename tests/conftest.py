import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The image folders' remembered checks (mobilenets/data/checks.py) of this test run, not the
# user's cache folder.
os.environ["MOBILENETS_CACHE_DIR"] = tempfile.mkdtemp(prefix="mobilenets-test-cache-")

import keras  # noqa: E402
import pytest  # noqa: E402

from mobilenets.cli import train_main  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)


# A tiny run of train.py (two epochs on 256 sample images), shared by the end-to-end tests.
TINY = """
model:
  name: mobilenet_v2
  alpha: 0.35
  input_shape: [32, 32, 1]
data:
  source: sample
  augment: flip_crop
  small_images: resize
  train_limit: 256
  eval_limit: 128
train:
  epochs: 2
  batch_size: 32
  optimizer: sgd
  learning_rate: 0.05
  schedule: cosine
  bn_momentum: 0.9
  ema_decay: 0.9
  checkpoint_steps: 5
  deterministic: true
export:
  modes: [float32, int8]
  calibration_samples: 16
  max_drop: 100
"""


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """One finished two-epoch run: (config path, workdir)."""
    root = tmp_path_factory.mktemp("run")
    config = root / "tiny.yaml"
    config.write_text(TINY)
    workdir = root / "work"
    assert train_main(["--config", str(config), "--workdir", str(workdir)]) == 0
    return config, workdir


# Each tier's time, printed at the end of a run (CI's log shows both): the sum of its tests'
# durations (setup, call and teardown; with -n 2 the two workers' sums, so about twice the
# wall clock a tier would take alone).
_TIER_SECONDS = {"fast": [0.0, set()], "slow": [0.0, set()]}


def pytest_runtest_logreport(report):
    tier = _TIER_SECONDS["slow" if "slow" in report.keywords else "fast"]
    tier[0] += report.duration
    tier[1].add(report.nodeid)


def pytest_terminal_summary(terminalreporter):
    lines = [f"{name} tier: {len(tests)} tests, {seconds / 60:.1f} min of test time"
             for name, (seconds, tests) in _TIER_SECONDS.items() if tests]
    if lines:
        terminalreporter.write_sep("-", "tiers")
        for line in lines:
            terminalreporter.write_line(line)
