"""The builders' fused BatchNormalization computes what Keras' layer does, in training and in
inference, updates the same moving statistics, and converts to the same TFLite graph."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mobilenets import build_model, compat, export_tflite
from mobilenets.models.layers import FusedBatchNormalization


def conv_net(norm):
    """conv -> BN -> ReLU6 -> depthwise -> BN -> pool -> dense, with `norm` as BatchNorm."""
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv")(inputs)
    x = norm(momentum=0.9, epsilon=1e-3, name="bn1")(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    x = norm(momentum=0.9, epsilon=1e-3, name="bn2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


def twins():
    keras.utils.set_random_seed(0)
    ours = conv_net(FusedBatchNormalization)
    theirs = conv_net(keras.layers.BatchNormalization)
    theirs.set_weights(ours.get_weights())
    for model in (ours, theirs):  # BatchNorm away from its identity start
        model.get_layer("bn1").gamma.assign(np.linspace(0.5, 1.5, 8))
        model.get_layer("bn1").beta.assign(np.linspace(-0.2, 0.2, 8))
    return ours, theirs


rng = np.random.default_rng(0)
IMAGES = rng.normal(1.0, 2.0, (16, 12, 12, 3)).astype("float32")
LABELS = np.eye(4, dtype="float32")[rng.integers(0, 4, 16)]


def test_training_and_inference_outputs_and_gradients_equal_keras():
    ours, theirs = twins()
    for training in (True, False):
        np.testing.assert_allclose(ours(IMAGES, training=training).numpy(),
                                   theirs(IMAGES, training=training).numpy(),
                                   rtol=1e-4, atol=1e-5)

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(keras.losses.categorical_crossentropy(
                LABELS, model(IMAGES, training=True), from_logits=True))
        return tape.gradient(loss, [v.value for v in model.trainable_variables])

    for mine, keras_ in zip(gradients(ours), gradients(theirs), strict=True):
        np.testing.assert_allclose(mine.numpy(), keras_.numpy(), rtol=1e-3, atol=1e-6)


def test_moving_statistics_and_losses_follow_keras_over_several_steps():
    """With the unbiased variance the kernel returns, the moving variance would be 16 * 144 /
    (16 * 144 - 1) too large: it is the biased one, as Keras keeps."""
    ours, theirs = twins()
    histories = []
    for model in (ours, theirs):
        model.compile(keras.optimizers.SGD(0.1), keras.losses.CategoricalCrossentropy(
            from_logits=True))
        histories.append(model.fit(IMAGES, LABELS, batch_size=8, epochs=3, shuffle=False,
                                   verbose=0).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4)
    for name in ("bn1", "bn2"):
        mine, keras_ = ours.get_layer(name), theirs.get_layer(name)
        np.testing.assert_allclose(mine.moving_mean.numpy(), keras_.moving_mean.numpy(),
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(mine.moving_variance.numpy(), keras_.moving_variance.numpy(),
                                   rtol=1e-4, atol=1e-6)
        assert not np.allclose(mine.moving_variance.numpy(), 1.0)  # it did move


def test_synchronized_takes_keras_path_and_mixed_precision_keeps_its_dtype():
    ours, theirs = twins()
    for model in (ours, theirs):
        for name in ("bn1", "bn2"):
            model.get_layer(name).synchronized = True
    np.testing.assert_allclose(ours(IMAGES, training=True).numpy(),
                               theirs(IMAGES, training=True).numpy(), rtol=1e-4, atol=1e-5)
    layer = FusedBatchNormalization(dtype="mixed_float16")
    half = tf.cast(IMAGES, tf.float16)
    out = layer(half, training=True)
    assert out.dtype == tf.float16
    keras_layer = keras.layers.BatchNormalization(dtype="mixed_float16")
    np.testing.assert_allclose(out.numpy(), keras_layer(half, training=True).numpy(), atol=2e-3)


def test_every_builder_uses_it_and_the_file_round_trips(tmp_path):
    model = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), num_classes=3)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(type(layer) is FusedBatchNormalization for layer in norms)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("stem_bn")) is FusedBatchNormalization


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_the_tflite_graph_is_the_one_keras_batch_norm_gives(mode):
    """BatchNorm still folds into the convolutions: the same ops, the same outputs."""
    ours, theirs = twins()
    calibration = lambda: ([image[None]] for image in IMAGES[:4])  # noqa: E731
    files = [export_tflite(model, mode, calibration, int8_input="float32") for model in
             (ours, theirs)]
    from ai_edge_litert.interpreter import Interpreter

    ops, outputs = [], []
    for content in files:
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        ops.append([op["op_name"] for op in compat.ops_details(interpreter)])
        details = interpreter.get_input_details()[0]
        interpreter.set_tensor(details["index"], IMAGES[:1])
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
    assert ops[0] == ops[1] and "MUL" not in ops[0]
    np.testing.assert_array_equal(outputs[0], outputs[1])
