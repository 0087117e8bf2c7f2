"""The task extension point, proven: a task written in this file alone (counting the objects of
a scene, as regression), registered, trained, evaluated and exported to float32 and int8 files
by the unchanged `mobilenets train`, with a config section of its own."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from mobilenets import config as config_lib
from mobilenets import tasks
from mobilenets.cli import main
from mobilenets.data.pipeline import Examples, resized_whole
from mobilenets.data.transforms import train_transform
from mobilenets.models.registry import build_model
from mobilenets.schema import Range, option
from tests.tasks.scenes_run import ONE_EPOCH

pytestmark = pytest.mark.slow  # an end-to-end run


@dataclasses.dataclass
class CountingConfig:
    tolerance: float = option(0.5, "a count is right within this many objects", Range(0))


class Counting(tasks.Task):
    """How many objects a scene holds: a backbone, average pooling and one linear unit."""

    name = "counting"
    labels = "objects"
    sources = ("scenes", "coco")
    headline = "right"  # the fraction of images counted within the tolerance
    report_keys = ("right", "mae")
    result_key = "count"
    Config = CountingConfig

    def build_model(self, model_config, num_classes):
        backbone = build_model(model_config.name, alpha=model_config.alpha,
                               input_shape=tuple(model_config.input_shape), include_top=False,
                               pooling="avg", include_preprocessing=True)
        count = keras.layers.Dense(1, name="count")(backbone.output)
        return keras.Model(backbone.input, count, name=f"counting_{backbone.name}")

    def examples(self, model, num_classes):
        def number(objects):  # the padded rows of class -1 are not objects
            return tf.reduce_sum(tf.cast(objects[:, 4] >= 0, tf.float32))[None]

        def augment(image, objects, seed, shape, config, ops):
            flipped = dataclasses.replace(config, augment="flip")  # counts survive a flip
            return train_transform(image, seed, shape, flipped), objects

        return Examples(target=number, truth=number, augment=augment, evaluation=resized_whole)

    def loss(self, api, train_config):
        return api.losses.MeanSquaredError()

    def predictions(self, model):
        return tf.function(lambda images: model(images, training=False))

    def scores(self, outputs, truths, class_names):
        error = np.abs(np.asarray(outputs).ravel() - np.asarray(truths).ravel())
        return {"right": float((error <= self.config.tolerance).mean()),
                "mae": float(error.mean()), "images": len(error)}

    def summary(self, metrics):
        return f"{metrics['right']:.3f} counted right, mean error {metrics['mae']:.3f}"

    def agreement(self, outputs, reference_outputs):
        return float((np.round(np.asarray(outputs)) == np.round(reference_outputs)).mean())

    def metadata(self, content, labels, name, description, version):
        return content  # Android's clients have no counting task: no metadata

    @classmethod
    def recognizes(cls, input_shape, output_shapes):
        return False  # its files look like a one-class classifier's

    def predict(self, outputs, labels, top, image_path, masks_dir=None):
        return {"image": str(image_path), "count": float(np.asarray(outputs).ravel()[0])}

    def describe(self, result):
        return f"{result['count']:.1f} objects"


@pytest.fixture
def counting():
    tasks.register(Counting)
    yield Counting
    del tasks.TASKS["counting"]


def test_a_task_defined_here_trains_evaluates_and_exports(counting, tmp_path, caplog):
    config = tmp_path / "counting.yaml"
    config.write_text("""
task:
  name: counting
  counting: {tolerance: 1.0}
model: {name: mobilenet_v2, alpha: 0.35, input_shape: [64, 64, 3]}
data: {source: scenes, scene_size: 64, train_scenes: 48, eval_scenes: 16}
""" + ONE_EPOCH)
    loaded = config_lib.load(config)
    assert loaded.task.counting.tolerance == 1.0
    assert tasks.get(loaded.task).config == CountingConfig(tolerance=1.0)
    caplog.set_level("INFO", logger="mobilenets")
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")]) == 0
    assert "counted right, mean error" in caplog.text
    metrics = json.loads((tmp_path / "run/metrics.json").read_text())
    assert metrics["images"] == 16 and 0 <= metrics["right"] <= 1 and metrics["mae"] >= 0
    report = json.loads((tmp_path / "run/export/report.json").read_text())
    for name in ("model_float32.tflite", "model_int8.tflite"):
        entry = report["files"][name]
        assert set(entry) >= {"right", "mae", "agreement", "partitions"}
    assert report["files"]["model_float32.tflite"]["agreement"] == 1.0
    assert report["files"]["model_int8.tflite"]["input"]["dtype"] == "uint8"
    assert config_lib.load(tmp_path / "run/config.yaml").task.counting.tolerance == 1.0
