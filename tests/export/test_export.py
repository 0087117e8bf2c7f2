"""TFLite export: the int8 file's input and output rewiring, and XNNPACK coverage per family."""

import warnings

import numpy as np
import pytest

from mobilenets import build_model, compat, export_tflite
from mobilenets.models.registry import min_input_size
from mobilenets.tflite.runner import TFLiteModel
from mobilenets.tflite.xnnpack import delegate_partitions
from tests.reference import set_batch_norm_statistics
from tests.tiers import families

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


@pytest.mark.slow
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


@pytest.mark.parametrize("name", families())
def test_every_family_runs_whole_inside_xnnpack(name):
    """No op left to TFLite's reference kernels, float32 and int8: the converter's int8 RELU
    after an ADD (Xception), SOFTMAX and uint8 QUANTIZE are rewired; ShuffleNetV1 is built
    without a standalone ReLU or AVERAGE_POOL_2D."""
    size = max(32, min_input_size(name))
    model = build_model(name, input_shape=(size, size, 3), num_classes=10, alpha=1.0,
                        include_preprocessing=True)
    images = rng.integers(0, 256, (4, size, size, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)
    for mode in ("float32", "int8"):
        content = export_tflite(model, mode, calibration(images))
        assert delegate_partitions(content) == (1, []), mode


# The variants the family test above does not build (it builds each family's default,
# conv_small and lite0; Hybrid-L's PTQ and QAT files are tested in test_mobilenet_v4.py).
OTHER_VARIANTS = [("mobilenet_v4", v) for v in ("conv_medium", "conv_large", "hybrid_medium")] \
    + [("efficientnet_lite", f"lite{i}") for i in range(1, 5)]


@pytest.mark.slow
@pytest.mark.parametrize("name, variant", OTHER_VARIANTS, ids=[v for _, v in OTHER_VARIANTS])
def test_every_variant_s_int8_file_runs_whole_inside_xnnpack(name, variant):
    """Each variant's own blocks (Conv-M/L's and the hybrids' UIB forms and attention,
    Lite1-4's depths), at a quarter width and 64x64 to keep the conversion short."""
    model = build_model(name, variant=variant, input_shape=(64, 64, 3), num_classes=10,
                        alpha=0.25, include_preprocessing=True)
    images = rng.integers(0, 256, (4, 64, 64, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)
    assert delegate_partitions(export_tflite(model, "int8", calibration(images))) == (1, [])


def test_int8_gelu_runs_in_float_inside_xnnpack():
    """XNNPACK has no int8 GELU: the file dequantizes, runs GELU in float and quantizes again,
    which computes what the Keras model does to within its 8-bit steps."""
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.Activation("gelu")(x)
    model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(x))
    images = rng.normal(size=(8, 8, 8, 3)).astype(np.float32)
    content = export_tflite(model, "int8", calibration(images), int8_input="float32",
                            int8_output="int8")
    assert delegate_partitions(content) == (1, [])
    runner, outputs = run(content, images)
    ops = [op["op_name"] for op in compat.ops_details(runner.interpreter)
           if op["op_name"] != "DELEGATE"]
    assert ops[ops.index("GELU") - 1:ops.index("GELU") + 2] == ["DEQUANTIZE", "GELU", "QUANTIZE"]
    expected = model(images).numpy()
    steps = np.abs(outputs - expected) / runner.output["quantization"][0]
    assert steps.max() <= 3, steps.max()


@pytest.mark.slow
def test_float_files_fuse_hard_swish_and_int8_files_keep_it_apart():
    """Float modes take x * (relu6(x + 3) / 6), one HARD_SWISH op in XNNPACK; int8 keeps the
    builders' (x / 6) * relu6(x + 3) (XNNPACK has no int8 HARD_SWISH). Both compute the model."""
    from ai_edge_litert.interpreter import Interpreter

    from mobilenets import compat

    model = build_model("mobilenet_v3_small", alpha=0.75, input_shape=(32, 32, 3),
                        num_classes=10, include_preprocessing=True)
    images = rng.integers(0, 256, (8, 32, 32, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)
    expected = model(images, training=False).numpy()
    hard_swishes = sum(layer.name.endswith("_hswish") for layer in model.layers)
    for mode, fused in (("float32", hard_swishes), ("float16", hard_swishes), ("int8", 0)):
        content = export_tflite(model, mode, calibration(images))
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        ops = [op["op_name"] for op in compat.ops_details(interpreter)]
        assert ops.count("HARD_SWISH") == fused, mode
        assert delegate_partitions(content) == (1, []), mode
        if mode != "int8":  # (int8 outputs of a random model are checked elsewhere)
            tolerance = {"float32": 1e-5, "float16": 5e-3}[mode]
            np.testing.assert_allclose(TFLiteModel(content)(images), expected, atol=tolerance,
                                       err_msg=mode)


@pytest.mark.parametrize("name", families())
def test_a_gray_model_exports_to_files_taking_rgb(name):
    """The gray conversion folded into the first convolution: the RGB file computes the gray
    model on the image's luma (exactly, up to float rounding), in one XNNPACK partition.
    (64 px and 16 images: a random network whose BatchNorm statistics come from 4 images of
    1x1 maps amplifies float rounding a thousandfold.)"""
    check_rgb_file(name)


def test_a_gray_model_with_symmetric_padding_exports_to_files_taking_rgb():
    """The first convolution strides, so a ZeroPadding2D comes before it: the fold passes it."""
    check_rgb_file("mobilenet_v1", padding="symmetric")


def check_rgb_file(name, **options):
    from mobilenets.export.rgb import LUMA, rgb_model
    from tests.reference import randomize

    size = max(64, min_input_size(name))
    model = build_model(name, input_shape=(size, size, 1), num_classes=10, alpha=1.0,
                        include_preprocessing=True, classifier_activation=None, **options)
    colour = rng.integers(0, 256, (16, size, size, 3)).astype(np.float32)
    gray = (colour * LUMA).sum(axis=-1, keepdims=True).astype(np.float32)
    randomize(model, np.random.default_rng(1), gray)
    expected = model(gray, training=False).numpy()
    assert np.abs(expected).max() > 0.1  # a signal to compare, not a dead network
    np.testing.assert_allclose(rgb_model(model)(colour).numpy(), expected, rtol=1e-4,
                               atol=1e-4)
    content = export_tflite(model, "float32", rgb_input=True)
    runner = TFLiteModel(content)
    assert tuple(runner.input["shape"]) == (1, size, size, 3)
    np.testing.assert_allclose(runner(colour), expected, rtol=1e-3, atol=1e-3)
    assert delegate_partitions(content) == (1, [])


def test_largest_difference_leaves_out_what_is_not_finite():
    """A detector's rows past its count may hold infinities in both files, and signalling
    NaNs, which warn when cast to float64."""
    from mobilenets.export.stage import largest_difference

    a = np.array([[0.5, 0.25], [np.inf, -np.inf]], np.float32)
    b = np.array([[0.75, 0.25], [np.inf, np.nan]], np.float32)
    assert largest_difference(a, b) == 0.25
    assert largest_difference(np.full(3, np.nan), np.zeros(3)) == 0.0
    signalling = np.array([0x7FA00000, 0x3F000000], np.uint32).view(np.float32)  # sNaN, 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert largest_difference(signalling, np.zeros(2, np.float32)) == 0.5
