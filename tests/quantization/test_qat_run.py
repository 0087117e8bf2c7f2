"""train.py with `qat.enabled` end to end: fine-tuning a float run, the QAT int8 export and
its report, evaluate.py on the QAT model, and resume."""

import json
import shutil

import numpy as np
import pytest

from mobilenets.cli import evaluate_main, train_main
from mobilenets.quantization import qat

pytestmark = pytest.mark.slow  # end-to-end runs

FLOAT = """
model:
  name: mobilenet_v2
  alpha: 0.35
  input_shape: [32, 32, 1]
data:
  source: sample
  augment: flip
  small_images: pad
  train_limit: 2048
  eval_limit: 256
train:
  epochs: 2
  batch_size: 64
  optimizer: {type: sgd, sgd: {nesterov: true}}
  learning_rate: 0.05
  warmup_epochs: 0.5
  schedule: cosine
  label_smoothing: 0
  bn_momentum: 0.9
export:
  modes: []
"""
QAT = """
model:
  name: mobilenet_v2
  alpha: 0.35
  input_shape: [32, 32, 1]
  init_from: {init_from}
data:
  source: sample
  augment: flip
  small_images: pad
  train_limit: 512
  eval_limit: 256
train:
  epochs: 2
  batch_size: 32
  optimizer: sgd
  learning_rate: 0.005
  schedule: cosine
  label_smoothing: 0
  checkpoint_steps: 5
  deterministic: true
export:
  modes: [int8]
  calibration_samples: 32
qat:
  enabled: true
  freeze_bn_after_epochs: 1
  freeze_ranges_after_epochs: 1
"""
STEPS_PER_EPOCH = 512 // 32


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A float run, then a two-epoch QAT run from its model: (QAT config path, workdir)."""
    root = tmp_path_factory.mktemp("qat")
    (root / "float.yaml").write_text(FLOAT)
    assert train_main(["--config", str(root / "float.yaml"), "--workdir",
                       str(root / "float")]) == 0
    config = root / "qat.yaml"
    config.write_text(QAT.format(init_from=root / "float" / "model.keras"))
    workdir = root / "work"
    assert train_main(["--config", str(config), "--workdir", str(workdir)]) == 0
    return config, workdir


def test_qat_run_exports_a_verified_int8_file(run):
    _, workdir = run
    assert (workdir / "model_qat.h5").is_file() and not (workdir / "model.keras").exists()
    report = json.loads((workdir / "export/report.json").read_text())
    assert report["keras_model"] == "model_qat.h5"
    assert list(report["files"]) == ["model_qat_int8.tflite"]  # export.modes is not used
    entry = report["files"]["model_qat_int8.tflite"]
    assert entry["input"] == {"dtype": "uint8", "shape": [1, 32, 32, 3], "scale": 1.0,
                              "zero_point": 0}
    assert entry["partitions"] == 1 and entry["ops_outside_xnnpack"] == []
    # A weak model (top-1 ~0.55 on 256 images) flips on small differences; the quickstart's
    # agreement is in results/ and docs/quantization.md.
    assert entry["agreement"] >= 0.9
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["steps"] == 2 * STEPS_PER_EPOCH
    # Started from the float model (top-1 ~0.6): 32 QAT steps from scratch stay near chance.
    assert metrics["top1"] >= 0.4


def test_evaluate_scores_the_qat_keras_model(run):
    config, workdir = run
    model = workdir / "model_qat.h5"
    assert evaluate_main(["--config", str(config), "--model", str(model)]) == 0
    scored = json.loads(model.with_name(model.name + ".eval.json").read_text())
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert scored["top1"] == pytest.approx(metrics["top1"], abs=1 / 256)


def test_qat_resumes_mid_epoch_to_the_same_weights(run, tmp_path, caplog):
    """Drop the checkpoints after step 25 (epoch 2, step 9, past the freezing boundary) and
    run again: the resumed run ends with the uninterrupted run's weights."""
    config, workdir = run
    copy = tmp_path / "work"
    shutil.copytree(workdir, copy)
    for path in copy.glob("checkpoints/ckpt-*.weights.h5"):
        if int(path.name[5:14]) > 25:
            path.unlink()
    (copy / "model_qat.h5").unlink()
    caplog.set_level("INFO", logger="mobilenets")
    assert train_main(["--config", str(config), "--workdir", str(copy),
                       "--set", "export.modes=[]"]) == 0
    assert "resumed from epoch 2, step 9" in caplog.text
    resumed = qat.load_model(copy / "model_qat.h5").get_weights()
    uninterrupted = qat.load_model(workdir / "model_qat.h5").get_weights()
    for ours, theirs in zip(resumed, uninterrupted, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
