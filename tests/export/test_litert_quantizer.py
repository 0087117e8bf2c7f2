"""`export.quantizer: litert`: the LiteRT Quantizer's int8 file, given the phone's contract
(uint8 pixels in, float softmax out, whole inside XNNPACK) without changing what it computes."""

import numpy as np
import pytest

from mobilenets import build_model, export_tflite
from mobilenets.errors import ExportOptionError
from mobilenets.export import litert_quantizer
from mobilenets.tflite.runner import TFLiteModel
from mobilenets.tflite.xnnpack import delegate_partitions
from tests.reference import set_batch_norm_statistics

rng = np.random.default_rng(0)
PIXELS = rng.integers(0, 256, (16, 32, 32, 3)).astype(np.float32)


def calibration():
    for image in PIXELS:
        yield [image[None]]


@pytest.fixture(scope="module")
def model():
    model = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), num_classes=10,
                        include_preprocessing=True)
    set_batch_norm_statistics(model, PIXELS)  # activations of a trained model's spread
    return model


def test_the_rewired_file_computes_what_the_quantizers_own_file_does(model):
    """The quantizer's own file takes int8 and gives an int8 softmax (outside XNNPACK); ours
    takes the pixels as uint8 and gives the float softmax of the same int8 logits."""
    own = litert_quantizer.quantize(export_tflite(model, "float32"), calibration)
    ours = export_tflite(model, "int8", calibration, quantizer="litert")
    own_runner, ours_runner = TFLiteModel(own), TFLiteModel(ours)
    assert own_runner.input["dtype"] == np.int8 and own_runner.output["dtype"] == np.int8
    assert delegate_partitions(own)[1] == ["SOFTMAX"]
    assert ours_runner.input["dtype"] == np.uint8
    assert ours_runner.input["quantization"] == (1.0, 0)
    assert ours_runner.output["dtype"] == np.float32
    assert delegate_partitions(ours) == (1, [])
    probabilities, quantized = ours_runner(PIXELS), own_runner(PIXELS)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, quantized, atol=1.5 / 256)
    assert TFLiteModel(ours, api="interpreter").interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["image"], "outputs": ["predictions"]}}


def test_what_the_litert_quantizer_does_not_make_is_refused(model):
    with pytest.raises(ExportOptionError, match=r"not uint8 in and int8 out"):
        export_tflite(model, "int8", calibration, int8_output="int8", quantizer="litert")
    with pytest.raises(ExportOptionError, match=r"export.float_layers applies to the "
                                                r"converter's int8 files"):
        export_tflite(model, "int8", calibration, float_layers=["Conv1"], quantizer="litert")


def test_hard_swish_stays_inside_xnnpack():
    """The quantizer gets hard-swish as the ops it is made of, not the float32 files' fused
    HARD_SWISH, which it would make an int8 HARD_SWISH that XNNPACK does not run."""
    model = build_model("mobilenet_v3_small", alpha=0.75, input_shape=(32, 32, 3),
                        num_classes=10, include_preprocessing=True)
    set_batch_norm_statistics(model, PIXELS)
    content = export_tflite(model, "int8", calibration, quantizer="litert")
    assert delegate_partitions(content) == (1, [])
