"""The fast tier's end-to-end run: `mobilenets train` then `mobilenets evaluate` on the smallest
model and data that still go through every stage (data, model, training, evaluation, export)."""

import json

from mobilenets.cli import main

QUICK = """
model:
  name: mobilenet_v1
  alpha: 0.25
  input_shape: [32, 32, 1]
data:
  source: sample
  augment: flip
  small_images: resize
  full_test_set: false
  train_limit: 80
  eval_limit: 32
  holdout: 16
train:
  epochs: 1
  batch_size: 32
  optimizer: sgd
  learning_rate: 0.01
  schedule: constant
export:
  modes: [float32, int8]
  calibration_samples: 8
  max_drop: 100
"""


def test_every_stage_runs_once(tmp_path, capsys):
    config = tmp_path / "quick.yaml"
    config.write_text(QUICK)
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["images"] == 32 and metrics["steps"] == 2  # 64 of the 80 train, batch 32
    assert metrics["validation"]["images"] == 16 and 0 <= metrics["validation"]["top1"] <= 1
    report = json.loads((workdir / "export/report.json").read_text())
    assert list(report["files"]) == ["model_float32.tflite", "model_int8.tflite"]
    assert report["files"]["model_float32.tflite"]["agreement"] == 1.0
    assert report["files"]["model_int8.tflite"]["partitions"] == 1
    capsys.readouterr()
    assert main(["evaluate", "--config", str(config), "--model",
                 str(workdir / "export/model_int8.tflite")]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["images"] == 32
    assert scored["top1"] == report["files"]["model_int8.tflite"]["top1"]


def test_a_preprocessing_the_clients_do_not_do_is_announced(caplog):
    from mobilenets.config import DataConfig
    from mobilenets.experiment import warn_about_deployment

    caplog.set_level("WARNING", logger="mobilenets")
    warn_about_deployment(DataConfig(small_images="resize", crop_fraction=1.0))
    assert not caplog.records
    warn_about_deployment(DataConfig(small_images="pad", crop_fraction=0.875))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "data.small_images: pad centres small images" in messages[0]
    assert "data.crop_fraction 0.875 crops the centre" in messages[1]
    assert "export/report.json's top-1 is what a phone scores" in messages[1]
