"""MobileNetV4: exact to timm's (the paper's tables) in parameters; Mobile MQA equal to
multi-query attention written out; the hybrids' int8 files whole inside XNNPACK."""

import collections

import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from mobilenets import build_model, compat, export_tflite
from mobilenets.models.attention import mobile_mqa
from mobilenets.quantization import qat
from mobilenets.tflite.runner import TFLiteModel
from mobilenets.tflite.xnnpack import delegate_partitions
from tests.reference import set_batch_norm_statistics

# timm 1.0's mobilenetv4_*, 1000 classes, trainable parameters (measured with timm's own
# models; BatchNorm statistics not counted), at the paper's resolutions.
TIMM_PARAMETERS = {"conv_small": 3_774_024, "conv_medium": 9_715_512,
                   "conv_large": 32_590_864, "hybrid_medium": 11_074_648,
                   "hybrid_large": 37_764_624}
rng = np.random.default_rng(0)


@pytest.mark.parametrize("variant", sorted(TIMM_PARAMETERS))
def test_parameters_equal_timm(variant):
    model = build_model("mobilenet_v4", input_shape=(224, 224, 3), num_classes=1000,
                        variant=variant)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == TIMM_PARAMETERS[variant]


# timm's classifier (1280 -> 1000, with bias), which its num_classes=0 leaves out, and its
# head (a 960 -> 1280 1x1 conv without bias, then BatchNorm), which it keeps: forward_features
# ends before it.
CLASSIFIER = 1280 * 1000 + 1000
HEAD = 960 * 1280 + 2 * 1280


@pytest.mark.parametrize("variant", ["conv_small", "hybrid_medium"])
def test_without_its_classifier_it_is_timms_num_classes_0_and_its_features(variant):
    def trainable(**options):
        model = build_model("mobilenet_v4", input_shape=(224, 224, 3), variant=variant,
                            include_top=False, **options)
        return sum(int(np.prod(w.shape)) for w in model.trainable_weights)

    assert trainable(pooling="avg") == TIMM_PARAMETERS[variant] - CLASSIFIER
    assert trainable() == TIMM_PARAMETERS[variant] - CLASSIFIER - HEAD
    assert trainable(pooling="avg") == (2_493_024 if variant == "conv_small" else
                                        TIMM_PARAMETERS[variant] - CLASSIFIER)


def test_small_width_runs_at_tiny_inputs():
    model = build_model("mobilenet_v4", input_shape=(32, 32, 1), num_classes=10,
                        variant="conv_small", alpha=0.5)
    out = model(np.zeros((2, 32, 32, 1), np.float32))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="variant must be one of conv_small"):
        build_model("mobilenet_v4", input_shape=(32, 32, 3), variant="hybrid_small")


def test_hybrids_scale_every_uib_and_attention_block_and_large_uses_gelu():
    medium = build_model("mobilenet_v4", input_shape=(64, 64, 3), variant="hybrid_medium")
    names = [layer.name for layer in medium.layers]
    attention = sorted({name.split("_")[0] for name in names if "_mqa_" in name})
    assert len(attention) == 8  # four in each of the last two stages
    scales = [layer for layer in medium.layers if layer.name.endswith("_layer_scale")]
    projections = [name for name in names if name.endswith("_project_conv")]
    assert len(scales) == len(attention) + len(projections) - 1  # all but the FusedIB
    np.testing.assert_array_equal(scales[0].get_weights()[0], np.full((1, 1, 80, 1), 1e-5,
                                                                       np.float32))
    large = build_model("mobilenet_v4", input_shape=(64, 64, 3), variant="hybrid_large")
    activations = {type(layer).__name__ for layer in large.layers
                   if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation))}
    assert activations == {"Activation"}
    assert {layer.get_config()["activation"] for layer in large.layers
            if isinstance(layer, keras.layers.Activation)} == {"gelu", "softmax"}


def test_mobile_mqa_is_multi_query_attention():
    """Two heads with their own queries sharing one key and one value, written in numpy from
    the block's weights: softmax(q k^T / sqrt(key_dim)) v, heads concatenated, projected,
    scaled per channel and added to the input."""
    heads, key_dim, channels = 2, 4, 6
    inputs = keras.Input((3, 5, channels))
    model = keras.Model(inputs, mobile_mqa(inputs, channels, heads=heads, key_dim=key_dim,
                                           name="block", layer_scale_init=0.5))
    for layer in model.layers:
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape) for w in layer.get_weights()])
    x = rng.normal(size=(2, 3, 5, channels)).astype(np.float32)

    weights = {layer.name: layer.get_weights() for layer in model.layers}
    gamma, beta, mean, variance = weights["block_mqa_norm"]
    normed = (x - mean) / np.sqrt(variance + 1e-3) * gamma + beta
    rows = normed.reshape(2, 15, channels)
    query = rows @ weights["block_mqa_query"][0][0, 0]  # (2, 15, heads * key_dim)
    key = rows @ weights["block_mqa_key"][0][0, 0]
    value = rows @ weights["block_mqa_value"][0][0, 0]
    outputs = []
    for head in range(heads):
        q = query[..., head * key_dim:(head + 1) * key_dim]
        logits = q @ key.transpose(0, 2, 1) / np.sqrt(key_dim)
        attention = np.exp(logits - logits.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        outputs.append(attention @ value)
    context = np.concatenate(outputs, axis=-1)
    projected = context @ weights["block_mqa_output"][0][0, 0]
    scaled = projected * weights["block_layer_scale"][0][0, 0, :, 0]
    expected = x + scaled.reshape(x.shape)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_hybrid_int8_files_run_whole_inside_xnnpack():
    """Post-training and QAT int8 files of Hybrid-L (Hybrid-M has the same kinds of blocks but
    GELU): the attention cores' matrix products and softmax run in float (XNNPACK has none in
    int8), so does GELU, all in one partition."""
    model = build_model("mobilenet_v4", input_shape=(64, 64, 3), num_classes=10, alpha=0.5,
                        variant="hybrid_large", include_preprocessing=True)
    images = rng.integers(0, 256, (8, 64, 64, 3)).astype(np.float32)
    set_batch_norm_statistics(model, images)

    def calibration():
        for image in images:
            yield [image[None]]

    def float_ops(content):
        interpreter = TFLiteModel(content).interpreter
        types = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
        return collections.Counter(
            op["op_name"] for op in compat.ops_details(interpreter)
            if op["op_name"] not in ("DELEGATE", "DEQUANTIZE", "QUANTIZE")
            and types[op["outputs"][0]] == np.float32)

    gelus = sum(isinstance(layer, keras.layers.Activation)
                and layer.get_config()["activation"] == "gelu" for layer in model.layers)
    ptq = export_tflite(model, "int8", calibration)
    assert delegate_partitions(ptq) == (1, [])
    # 8 attention blocks: two products, a scale and a softmax each; the classifier's softmax
    assert float_ops(ptq) == collections.Counter(BATCH_MATMUL=16, MUL=8, SOFTMAX=9, GELU=gelus)

    # QAT fine-tunes a trained model. A fresh hybrid's layer scales (1e-5) would put a strided
    # block's output (it has no shortcut) below one step of its 8-bit grid: all zeros.
    for layer in model.layers:
        if layer.name.endswith("_layer_scale"):
            layer.set_weights([np.ones_like(w) for w in layer.get_weights()])
    quantized = qat.quantize(model)
    with tf.GradientTape() as tape:
        outputs = quantized(images, training=True)
        loss = tf_keras.losses.categorical_crossentropy(np.eye(10)[np.arange(8)], outputs)
    gradients = tape.gradient(loss, quantized.trainable_weights)
    assert all(np.any(g.numpy()) for g in gradients)  # through the float attention cores too
    assert delegate_partitions(export_tflite(quantized, "int8")) == (1, [])
