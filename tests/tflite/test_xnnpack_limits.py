"""Int8 ops that XNNPACK accepts but cannot build (requantization scale >= 256): found in the
file, kept in float by the export, refused by the runner, and a file that makes LiteRT fail or
abort is run only in a child process.

The model below gives one by construction: a linear 1x1 conv with huge weights widens the
range that the next conv, whose ReLU6 output spans only [0, 6], reads; what an untrained or
barely trained model can do by itself (a MobileNetV2 after one epoch on noise images made
LiteRT 2.3.0 abort with "double free or corruption").
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mobilenets import export_tflite
from mobilenets.errors import UserError
from mobilenets.export.convert import _converter
from mobilenets.tflite import runner as runner_lib
from mobilenets.tflite.runner import TFLiteModel, runs_apart
from mobilenets.tflite.xnnpack import (
    REQUANTIZATION_LIMIT,
    delegate_partitions,
    requantization_overflows,
)

rng = np.random.default_rng(0)
PIXELS = rng.integers(0, 256, (16, 8, 8, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="pixels")(inputs)
    x = keras.layers.Conv2D(8, 1, name="wide")(x)
    x = keras.layers.Conv2D(8, 1, activation="relu6", name="narrow")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="logits")(x)
    built = keras.Model(inputs, outputs, name="overflowing")
    wide, narrow = built.get_layer("wide"), built.get_layer("narrow")
    wide.set_weights([w * 2000 for w in wide.get_weights()])
    narrow.set_weights([w * 200 for w in narrow.get_weights()])
    return built


def calibration():
    for image in PIXELS:
        yield [image[None]]


@pytest.fixture(scope="module")
def plain_int8(model):
    """The converter's own int8 file of `model`, not fixed."""
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def test_the_converter_makes_an_op_xnnpack_cannot_build_and_litert_fails_on_it(
        plain_int8, tmp_path):
    overflows = requantization_overflows(plain_int8)
    assert [o.op for o in overflows] == ["CONV_2D"]
    assert "narrow" in overflows[0].tensor and overflows[0].scale >= REQUANTIZATION_LIMIT
    path = tmp_path / "plain.tflite"
    path.write_bytes(plain_int8)
    assert "failed to create XNNPACK runtime" in runs_apart(path)


def test_the_export_keeps_such_ops_in_float_and_the_file_runs_whole_in_xnnpack(
        model, tmp_path, caplog):
    caplog.set_level("WARNING", logger="mobilenets")
    content = export_tflite(model, "int8", calibration)
    assert requantization_overflows(content) == []
    assert "narrow (CONV_2D, requantization scale" in caplog.text
    path = tmp_path / "fixed.tflite"
    path.write_bytes(content)
    assert runs_apart(path) is None
    assert delegate_partitions(content) == (1, [])
    outputs = TFLiteModel(content)(PIXELS)
    np.testing.assert_allclose(outputs, model.predict(PIXELS, verbose=0), atol=0.05)


def test_the_runner_refuses_such_a_file_naming_the_op(plain_int8):
    with pytest.raises(UserError, match=r"XNNPACK, LiteRT's default delegate, cannot run its "
                                        r"CONV_2D \S*narrow\S* \(int8 requantization scale \d+; "
                                        r"it must be below 256\)"):
        TFLiteModel(plain_int8)
    assert TFLiteModel(plain_int8, builtin_kernels=True)(PIXELS[:2]).shape == (2, 3)


def test_a_runtime_that_aborts_takes_only_the_child_process(tmp_path, monkeypatch):
    path = tmp_path / "any.tflite"
    path.write_bytes(b"")
    monkeypatch.setattr(runner_lib, "_RUN_ONCE", "import os\nos.abort()\n")
    assert runs_apart(path).startswith("LiteRT ended the process with SIGABRT")
