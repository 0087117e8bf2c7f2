"""tf.distribute from the config: mirrored replicas on virtual CPUs give the single replica's
training, two multi-worker processes train one model, mixed precision exports float32 files.

Each run is a train.py subprocess: virtual CPUs and cluster membership are fixed when a
process first starts TensorFlow.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # end-to-end runs

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = """
model:
  name: {name}
  alpha: {alpha}
  input_shape: [32, 32, 1]
  dropout: 0.0
data:
  source: sample
  augment: flip
  small_images: pad
  train_limit: {images}
  eval_limit: 64
  full_test_set: false
train:
  epochs: {epochs}
  batch_size: 64
  optimizer: sgd
  learning_rate: {lr}
  schedule: constant
  label_smoothing: 0
  bn_momentum: 0.9
  deterministic: true
export:
  modes: []
"""


def train(tmp_path, name, settings, *extra, env=None, background=False):
    """Runs train.py on SMALL filled in with `settings` (or on `settings`, a whole config's
    YAML), `extra` as --set options."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(settings if isinstance(settings, str) else SMALL.format(**settings))
    command = [sys.executable, str(ROOT / "train.py"), "--config", str(config),
               "--workdir", str(tmp_path / name), *[a for s in extra for a in ("--set", s)]]
    options = dict(cwd=ROOT, env={**os.environ, **(env or {})}, text=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if background:
        return subprocess.Popen(command, **options)
    done = subprocess.run(command, timeout=900, **options)
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout


def losses(workdir):
    lines = (workdir / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index("loss")
    return np.array([float(line.split(",")[column]) for line in lines[1:]])


def weights(path):
    """A saved model's weights, loaded as the package loads models (its own layers
    registered, whichever tests ran before in this process)."""
    from mobilenets import artifacts

    return artifacts.load_model(path).get_weights()


def test_mirrored_replicas_train_exactly_like_one(tmp_path):
    """SqueezeNet (no BatchNorm, no dropout), three steps of 64 images: two replicas on two
    virtual CPUs, each taking half of every batch, give one replica's losses and weights."""
    settings = dict(name="squeezenet", alpha=1.0, images=64, epochs=3, lr=0.05)
    train(tmp_path, "one", settings)
    log = train(tmp_path, "two", settings, "runtime.strategy=mirrored", "runtime.virtual_cpus=2")
    assert "2 replicas in sync (1 worker(s)), global batch 64, 32 per replica" in log
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-5)
    for ours, theirs in zip(weights(tmp_path / "two/model.keras"),
                            weights(tmp_path / "one/model.keras"), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
    metrics = json.loads((tmp_path / "two/metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["global_batch_size"] == 64


def test_mirrored_replicas_distil_exactly_like_one(tmp_path):
    """Distillation under tf.distribute: a SqueezeNet student of a MobileNetV1 teacher (another
    family, size and channel count) on two replicas gives one replica's losses; without the
    teacher they differ."""
    from mobilenets import build_model

    teacher = tmp_path / "teacher.keras"
    build_model("mobilenet_v1", alpha=0.25, input_shape=(40, 40, 3), num_classes=10,
                include_preprocessing=True).save(teacher)
    distil = (f"train.teacher={teacher}", "train.distill_weight=0.5",
              "train.distill_temperature=2")
    settings = dict(name="squeezenet", alpha=1.0, images=64, epochs=2, lr=0.05)
    log = train(tmp_path, "one", settings, *distil)
    assert f"train.teacher: {teacher} (mobilenet_v1_0.25_40" in log
    train(tmp_path, "two", settings, *distil, "runtime.strategy=mirrored",
          "runtime.virtual_cpus=2")
    np.testing.assert_allclose(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-5)
    train(tmp_path, "plain", settings)
    assert not np.allclose(losses(tmp_path / "plain"), losses(tmp_path / "one"), rtol=1e-3)


def test_mirrored_quickstart_model_batch_norm_sees_the_global_batch_when_synchronized(tmp_path):
    """The quickstart's MobileNetV2 0.35 on two replicas: with runtime.sync_batch_norm its
    first step's loss is the single replica's (BatchNorm normalizes over the global batch);
    without, each replica normalizes its half and the loss differs.

    Later steps are not compared tightly: this early in training the loss is so sensitive
    that on one device merely computing the variance as E[x^2] - E[x]^2 (Keras' synchronized
    BatchNorm) instead of E[(x - mean)^2] moves the second step's loss by 4%, and the
    replicas' different summation order does the same (tensorflow/tensorflow#60438)."""
    settings = dict(name="mobilenet_v2", alpha=0.35, images=64, epochs=1, lr=0.01)
    mirrored = ("runtime.strategy=mirrored", "runtime.virtual_cpus=2")
    train(tmp_path, "one", settings, "runtime.sync_batch_norm=true")
    train(tmp_path, "synchronized", settings, *mirrored, "runtime.sync_batch_norm=true")
    train(tmp_path, "per_replica", settings, *mirrored)
    one = losses(tmp_path / "one")[0]
    np.testing.assert_allclose(losses(tmp_path / "synchronized")[0], one, rtol=1e-4)
    assert abs(losses(tmp_path / "per_replica")[0] - one) > 1e-3 * one


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(tmp_path, epochs, settings=None):
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    settings = settings or dict(name="mobilenet_v2", alpha=0.35, images=256, epochs=epochs,
                                lr=0.05)
    processes = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir(exist_ok=True)
        tf_config = {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        processes.append(train(tmp_path, "run", settings, "runtime.strategy=multi_worker",
                               env={"TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(scratch)},
                               background=True))
    logs = [process.communicate(timeout=900)[0] for process in processes]
    for process, log in zip(processes, logs):
        assert process.returncode == 0, log[-3000:]
    return logs


def workers_agree(tmp_path):
    """Asserts that the chief's final model and worker 1's hold the same weights; returns
    (the run directory, worker 1's scratch directory)."""
    workdir, scratch = tmp_path / "run", tmp_path / "tmp1/mobilenets-run-worker-1"
    for ours, theirs in zip(weights(workdir / "model.keras"), weights(scratch / "model.keras"),
                            strict=True):
        np.testing.assert_array_equal(ours, theirs)
    return workdir, scratch


def test_two_workers_train_one_model_and_resume(tmp_path):
    """Two worker processes (TF_CONFIG on 127.0.0.1) train an epoch of 4 global batches: both
    end with the same weights, only the chief writes the run directory, and run again with a
    second epoch both resume from the chief's checkpoint."""
    run_workers(tmp_path, epochs=1)
    workdir, scratch = workers_agree(tmp_path)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert (metrics["workers"], metrics["replicas"], metrics["global_batch_size"]) == (2, 2, 64)
    assert len(losses(workdir)) == 1  # one CSV log, written once
    assert sorted(p.name for p in scratch.iterdir()) == ["checkpoints", "model.keras"]

    logs = run_workers(tmp_path, epochs=2)
    for log in logs:
        assert "resumed from epoch 2, step 0" in log
    assert len(losses(workdir)) == 2
    workers_agree(tmp_path)


def test_segmentation_trains_on_two_workers(tmp_path):
    """A task's one-epoch run on two worker processes: both end with the same weights.
    (Detection's distributed run, its two outputs with a loss each, is the mirrored one above;
    the workers' cluster, sharding and chief do not depend on the task.)"""
    from tests.tasks.segmentation.test_task import QUICK

    run_workers(tmp_path, 1, QUICK.replace("modes: [float32, int8]", "modes: []")
                .replace("batch_size: 16", "batch_size: 32"))
    workdir, _ = workers_agree(tmp_path)
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert (metrics["workers"], metrics["replicas"], metrics["steps"]) == (2, 2, 2)
    assert 0 <= metrics["miou"] <= 1 and np.isfinite(losses(workdir)).all()


def test_mixed_precision_trains_and_exports_float32_files(tmp_path):
    settings = dict(name="mobilenet_v2", alpha=0.35, images=128, epochs=1, lr=0.05)
    log = train(tmp_path, "mixed", settings, "runtime.mixed_precision=mixed_float16",
                "export.modes=[float32, int8]", "export.max_drop=100")
    assert "mixed_float16: compute in float16, float32 variables and softmax, dynamic loss " \
           "scaling" in log
    model = keras.models.load_model(tmp_path / "mixed/model.keras", compile=False)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    report = json.loads((tmp_path / "mixed/export/report.json").read_text())
    for name in ("model_float32.tflite", "model_int8.tflite"):
        assert report["files"][name]["partitions"] == 1
    assert report["files"]["model_float32.tflite"]["agreement"] == 1.0


def test_qat_trains_under_mirrored(tmp_path):
    """QAT from scratch on two mirrored replicas, across a BatchNorm freezing boundary, then
    the QAT int8 export."""
    settings = dict(name="mobilenet_v2", alpha=0.35, images=128, epochs=2, lr=0.05)
    train(tmp_path, "qat", settings, "runtime.strategy=mirrored", "runtime.virtual_cpus=2",
          "qat.enabled=true", "qat.freeze_bn_after_epochs=1", "export.modes=[int8]",
          "export.max_drop=100")
    report = json.loads((tmp_path / "qat/export/report.json").read_text())
    assert report["files"]["model_qat_int8.tflite"]["partitions"] == 1
    assert json.loads((tmp_path / "qat/metrics.json").read_text())["replicas"] == 2


def test_detection_trains_on_mirrored_replicas(tmp_path):
    """SSDLite's two outputs and dict targets through two mirrored replicas: each replica's
    loss is normalized by its own matched anchors, so the figures are not one replica's
    exactly, but the run trains, validates and scores."""
    from tests.tasks.detection.test_task import QUICK

    config = tmp_path / "detection.yaml"
    config.write_text(QUICK)
    settings = ("runtime.strategy=mirrored", "runtime.virtual_cpus=2", "train.batch_size=32",
                "export.modes=[]")
    done = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--config", str(config), "--workdir",
         str(tmp_path / "run"), *[a for s in settings for a in ("--set", s)]], cwd=ROOT,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 replicas in sync (1 worker(s)), global batch 32, 16 per replica" in done.stdout
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["steps"] == 2 and 0 <= metrics["map50"] <= 1
    assert np.isfinite(losses(tmp_path / "run")).all()
