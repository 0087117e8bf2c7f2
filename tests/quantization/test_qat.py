"""QAT: the tf_keras twin of every family, tfmot annotation, one training step, int8 export."""

import numpy as np
import pytest
import tf_keras

from mobilenets import build_model, compat, export_tflite, keras2, list_models
from mobilenets.models.registry import min_input_size
from mobilenets.quantization import qat
from mobilenets.tflite.runner import TFLiteModel
from mobilenets.tflite.xnnpack import delegate_partitions
from tests.tiers import families

rng = np.random.default_rng(0)


def small(name, channels=1):
    size = max(32, min_input_size(name))
    options = {} if name in ("squeezenet", "xception") else {"alpha": 0.5}
    model = build_model(name, input_shape=(size, size, channels), num_classes=10,
                        include_preprocessing=True, **options)
    images = rng.integers(0, 256, (8, size, size, channels)).astype(np.float32)
    return model, images


@pytest.mark.parametrize("name", list_models())
def test_twin_computes_what_the_keras3_model_does(name):
    model, images = small(name, channels=3)
    twin = keras2.twin(model)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in model.layers]
    assert twin.count_params() == model.count_params()
    np.testing.assert_allclose(twin(images, training=False).numpy(),
                               model(images, training=False).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", families(fast=("squeezenet",)))
def test_qat_trains_and_exports_whole_inside_xnnpack(name):
    model, images = small(name)
    quantized = qat.quantize(model)
    before = [w.copy() for w in quantized.get_weights()]
    quantized.compile(tf_keras.optimizers.SGD(0.01), "categorical_crossentropy")
    labels = np.eye(10)[np.arange(len(images)) % 10]
    quantized.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)
    changed = sum(not np.array_equal(a, b) for a, b in zip(before, quantized.get_weights()))
    assert changed > 0

    def calibration():
        for image in images:
            yield [image[None]]

    content = export_tflite(quantized, "int8", calibration)
    runner = TFLiteModel(content)
    assert runner.input["dtype"] == np.uint8 and runner.input["quantization"] == (1.0, 0)
    probabilities = runner(images)
    assert probabilities.shape == (len(images), 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert delegate_partitions(content) == (1, [])


def test_depthwise_kernels_are_quantized_per_channel():
    """Each output channel of a depthwise kernel gets its own 8-bit grid, scale max|w| / 127
    (what the converter emits), not one range for the whole kernel (tfmot's default)."""
    kernel = rng.normal(size=(3, 3, 4, 1)).astype(np.float32)
    kernel[..., 2, :] *= 100.0  # one wide channel must not coarsen the others
    quantized = qat.DepthwiseKernelQuantizer()(kernel, training=True, weights={}).numpy()
    for channel in range(4):
        values = kernel[..., channel, 0]
        scale = np.abs(values).max() / 127
        steps = quantized[..., channel, 0] / scale
        np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
        np.testing.assert_allclose(quantized[..., channel, 0], values, atol=scale / 2 + 1e-6)


def test_an_option_tf_keras_lacks_is_an_error_not_dropped():
    with pytest.raises(ValueError, match="no option 'strange_option'"):
        keras2.twin_config(tf_keras.layers.Dense, {"units": 2, "strange_option": 3}, "logits")


def _ops(content):
    """(op name, output dtype name) of every op of a .tflite file, in order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    dtypes = {t["index"]: t["dtype"].__name__ for t in interpreter.get_tensor_details()}
    return [(op["op_name"], dtypes[op["outputs"][0]]) for op in compat.ops_details(interpreter)]


@pytest.mark.slow
def test_the_dense_classifier_stays_float_in_qat_and_in_the_int8_file():
    model, images = small("mobilenet_v2")
    quantized = qat.quantize(model)
    ranges = {layer.layer.name: [w.name.split("/")[-1] for w in layer.non_trainable_weights]
              for layer in quantized.layers if hasattr(layer, "layer")}
    assert ranges["logits"] == ["optimizer_step:0"]  # no kernel or output quantizer
    assert "output_min:0" in ranges["avg_pool"]
    qat.init_ranges(quantized, model, [[images]])
    content = export_tflite(quantized, "int8")  # a QAT model needs no calibration images
    ops = _ops(content)
    first = ops.index(("QUANTIZE", "int8"), 2)  # after uint8 -> float and the input's own range
    # The [0, 255] -> [-1, 1] normalization runs in float, as in the QAT model; then everything
    # is int8 up to the pooled features, and the classifier and softmax are float.
    assert ops[first - 2:first] == [("MUL", "float32"), ("ADD", "float32")]
    assert ops[-3:] == [("DEQUANTIZE", "float32"), ("FULLY_CONNECTED", "float32"),
                        ("SOFTMAX", "float32")]
    assert all(dtype == "int8" for _, dtype in ops[first:-3])
    assert delegate_partitions(content) == (1, [])
    with pytest.raises(ValueError, match="export.int8_output: a QAT model's int8 file returns"):
        export_tflite(quantized, "int8", int8_output="int8")


def test_calibration_sets_the_inputs_range_and_widens_a_constant_ones():
    """A branch that never fires (its conv all zeros) would get an empty range, whose scale
    (about 4e-9) XNNPACK cannot requantize for the concatenation after it: it starts at
    [0, MIN_RANGE], and the int8 file runs in one partition."""
    import keras

    inputs = keras.Input((8, 8, 3))
    live = keras.layers.Conv2D(4, 1, name="live")(inputs)
    dead = keras.layers.Conv2D(4, 1, kernel_initializer="zeros", name="dead")(inputs)
    model = keras.Model(inputs, keras.layers.Concatenate(name="joined")([live, dead]))
    quantized = qat.quantize(model)
    images = rng.uniform(0, 255, (4, 8, 8, 3)).astype(np.float32)
    qat.init_ranges(quantized, model, [[images]])
    (input_layer,) = [layer for layer in quantized.layers
                      if type(layer).__name__ == "QuantizeLayer"]
    assert activation_range(input_layer) == (0.0, pytest.approx(images.max()))  # holds zero
    assert activation_range(quantized.get_layer("quant_dead")) == (
        0.0, pytest.approx(qat.MIN_RANGE))
    assert activation_range(quantized.get_layer("quant_live"))[1] > 1.0
    # one partition (the float input's QUANTIZE op before it: no [0, 255] input layer here)
    assert delegate_partitions(export_tflite(quantized, "int8")) == (1, ["QUANTIZE"])


def activation_range(layer):
    """(min, max) of the one activation range of a tfmot layer (its scalar range variables;
    their names carry the layer's, which tf_keras makes unique per process)."""
    scalars = [w for w in layer.non_trainable_weights if w.shape.rank == 0]
    low, high = ([float(w.numpy()) for w in scalars if w.name.endswith(end)]
                 for end in ("_min:0", "_max:0"))
    return low[0], high[0]


def test_squeezenet_keeps_its_conv_classifier_in_int8():
    model, _ = small("squeezenet")
    assert qat.float_classifier(keras2.twin(model)) == set()


@pytest.mark.slow
def test_a_gray_qat_model_exports_to_a_file_taking_rgb():
    """A QAT model keeps its first convolution's fake quantization: the gray conversion is a
    fixed float 1x1 convolution before the (float) input normalization, in the same partition."""
    model, images = small("mobilenet_v2")
    quantized = qat.quantize(model)
    qat.init_ranges(quantized, model, [[images]])
    content = export_tflite(quantized, "int8", rgb_input=True)
    runner = TFLiteModel(content)
    assert tuple(runner.input["shape"]) == (1, 32, 32, 3)
    assert _ops(content)[:2] == [("DEQUANTIZE", "float32"), ("CONV_2D", "float32")]
    assert delegate_partitions(content) == (1, [])
    gray_file = TFLiteModel(export_tflite(quantized, "int8"))
    colour = np.repeat(images, 3, axis=-1)  # a gray photo in RGB: the same predictions
    np.testing.assert_array_equal(runner(colour).argmax(1), gray_file(images).argmax(1))
