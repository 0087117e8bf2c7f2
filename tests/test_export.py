"""TFLite export: the int8 file's input and output rewiring, and XNNPACK coverage per family."""

import numpy as np
import pytest

from mobilenets import build_model, export_tflite, list_models
from mobilenets.evaluation import TFLiteModel
from mobilenets.export import delegate_partitions
from mobilenets.models.registry import min_input_size

rng = np.random.default_rng(0)
PIXELS = rng.integers(0, 256, (8, 32, 32, 1)).astype(np.float32)


def calibration(images):
    def generate():
        for image in images:
            yield [image[None]]
    return generate


@pytest.fixture(scope="module")
def tiny():
    return build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 1), num_classes=10,
                       include_preprocessing=True)


def run(content, images):
    runner = TFLiteModel(content)
    return runner, runner(images)


def test_uint8_pixel_input_computes_what_the_float_input_does(tiny):
    """Camera bytes in (uint8, scale 1, zero point 0) give exactly the int8 outputs that the
    converter's float-input file gives for the same pixel values."""
    float_in = export_tflite(tiny, "int8", calibration(PIXELS), int8_input="float32",
                             int8_output="int8")
    pixels_in = export_tflite(tiny, "int8", calibration(PIXELS), int8_output="int8")
    runner, from_pixels = run(pixels_in, PIXELS)
    assert runner.input["dtype"] == np.uint8 and runner.input["quantization"] == (1.0, 0)
    _, from_floats = run(float_in, PIXELS)
    np.testing.assert_array_equal(from_pixels, from_floats)


def test_float_softmax_output_matches_the_int8_softmax(tiny):
    int8_out = export_tflite(tiny, "int8", calibration(PIXELS), int8_output="int8")
    float_out = export_tflite(tiny, "int8", calibration(PIXELS))
    runner, probabilities = run(float_out, PIXELS)
    assert runner.output["dtype"] == np.float32
    _, quantized = run(int8_out, PIXELS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, quantized, atol=1.5 / 256)
    assert delegate_partitions(float_out) == (1, [])
    assert delegate_partitions(int8_out)[1] == ["SOFTMAX"]  # why float output is the default


# int8 ops XNNPACK leaves out in these families today (the export issue's open work):
# a standalone int8 RELU (Xception's pre-activations, ShuffleNetV1's final ReLU after the
# concatenation) and ShuffleNetV1's AVERAGE_POOL_2D; V3's hard-swish ADDs when calibrated on a
# randomly initialized model (their input/output scale ratio leaves XNNPACK's range).
NOT_YET_WHOLE = {"mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v1", "xception"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="int8 ops outside XNNPACK"))
    if name in NOT_YET_WHOLE else name for name in list_models()])
def test_every_family_runs_whole_inside_xnnpack(name):
    size = max(32, min_input_size(name))
    model = build_model(name, input_shape=(size, size, 3), num_classes=10, alpha=1.0,
                        include_preprocessing=True)
    images = rng.integers(0, 256, (4, size, size, 3)).astype(np.float32)
    for mode in ("float32", "int8"):
        content = export_tflite(model, mode, calibration(images))
        assert delegate_partitions(content) == (1, []), mode
