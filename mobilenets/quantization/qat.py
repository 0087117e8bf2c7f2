"""Quantization-aware training: the tf_keras twin of a Keras 3 model, annotated for tfmot.

tensorflow-model-optimization quantizes only Keras 2 (tf_keras) models (its issues #1119 and
#1270), so `quantize(model)` takes the model's twin (`keras2.twin`) and applies tfmot's default
8-bit scheme with the QuantizeConfigs below for what its registry lacks.
"""

import warnings

import keras
import tensorflow as tf
import tensorflow_model_optimization as tfmot
import tf_keras

from mobilenets import compat
from mobilenets.keras2 import ChannelSplit, twin
from mobilenets.models import attention

quantize_keras = tfmot.quantization.keras
default_8bit_quantize_registry = compat.tfmot_default_8bit_registry()

class DepthwiseKernelQuantizer(quantize_keras.quantizers.Quantizer):
    """Per-channel symmetric 8-bit quantization of a depthwise kernel (kh, kw, C, M), with a
    straight-through gradient.

    tfmot's default quantizes along the last axis, which for a depthwise kernel is the depth
    multiplier (1): in effect one range for the whole kernel (tfmot issue #808), while the
    TFLite converter quantizes depthwise weights per output channel (C * M), scale max|w| / 127.
    TensorFlow's per-channel FakeQuant op works on the last axis only, and the converter
    rejects one applied to a reshaped kernel, so the rounding is written out: the converter
    folds it into a constant that already lies on its own per-channel grid (BatchNorm folding
    scales each channel, which keeps it on the grid), so training sees what the phone runs.
    """

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        scale = tf.reduce_max(tf.abs(inputs), axis=[0, 1], keepdims=True) / 127.0
        scale = tf.where(scale > 0, scale, tf.ones_like(scale))
        quantized = tf.clip_by_value(tf.round(inputs / scale), -127.0, 127.0) * scale
        return inputs + tf.stop_gradient(quantized - inputs)

    def get_config(self):
        return {}


class DepthwiseQuantizeConfig(default_8bit_quantize_registry.Default8BitConvQuantizeConfig):
    """tfmot's DepthwiseConv2D config with the per-channel `DepthwiseKernelQuantizer`."""

    def __init__(self):
        super().__init__(["depthwise_kernel"], ["activation"], False)
        self.weight_quantizer = DepthwiseKernelQuantizer()

    def get_config(self):
        return {}


class _Registry(default_8bit_quantize_registry.Default8BitQuantizeRegistry):
    def __init__(self):
        super().__init__()
        # tfmot's registry keeps its layer -> QuantizeConfig map in this private attribute.
        self._layer_quantize_map[tf_keras.layers.DepthwiseConv2D] = DepthwiseQuantizeConfig()


class QuantizeScheme(quantize_keras.default_8bit.Default8BitQuantizeScheme):
    """tfmot's default 8-bit scheme (its layer transforms, e.g. conv + BN + ReLU quantized
    once, after the ReLU, as the converter fuses them), with per-channel depthwise kernels."""

    def get_quantize_registry(self):
        return _Registry()


class OutputQuantizeConfig(quantize_keras.QuantizeConfig):
    """No weights; the output quantized with a moving-average 8-bit range (Rescaling, the
    hard-swish and SE `Multiply`): each of these is its own int8 op in the TFLite file."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [quantize_keras.quantizers.MovingAverageQuantizer(
            num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


class NoOpQuantizeConfig(OutputQuantizeConfig):
    """Nothing quantized: the `+3` shift of hard-swish / hard-sigmoid, which the converter
    fuses with the ReLU6 after it (that ReLU6's output carries the range), channel splits and
    bilinear resizing (a segmentation head's last layer), whose outputs keep their input's
    range, and the float classifier (`float_classifier`)."""

    def get_output_quantizers(self, layer):
        return []


CUSTOM_OBJECTS = {
    "ChannelSplit": ChannelSplit,
    "DepthwiseKernelQuantizer": DepthwiseKernelQuantizer,
    "DepthwiseQuantizeConfig": DepthwiseQuantizeConfig,
    "OutputQuantizeConfig": OutputQuantizeConfig,
    "NoOpQuantizeConfig": NoOpQuantizeConfig,
}


def _quantize_config(layer, float_names=(), output_names=()):
    """Our QuantizeConfig for `layer`, or None to leave it to tfmot's registry."""
    if (layer.name in float_names or isinstance(layer, (ChannelSplit, tf_keras.layers.Resizing))
            or layer.name.endswith("_shift")):
        return NoOpQuantizeConfig()
    if (layer.name in output_names
            or isinstance(layer, (tf_keras.layers.Rescaling, tf_keras.layers.Multiply))):
        return OutputQuantizeConfig()
    return None


def standalone_batch_norms(model):
    """The BatchNorms of the Keras 3 `model` that follow no convolution (Mobile MQA's
    pre-norm): tfmot folds the others into their convolution and has no config for these, which
    the converter makes an int8 MUL and ADD."""
    convolutions = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
    return {layer.name for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)
            and not isinstance(compat.inbound_layers(layer)[0], convolutions)}


def float_classifier(model):
    """Names of the layers QAT leaves in float: a Dense `logits` layer and those after it.

    Logits on an 8-bit grid tie: on the quickstart model one step is 0.25 of a logit, and a
    third of the images where the int8 file and the QAT model disagreed had two classes with
    equal int8 logits, the first one winning. A float classifier costs one small float
    matmul (1280 x 1000 MACs for ImageNet V2) and stays inside XNNPACK. SqueezeNet's
    classifier is a 1x1 conv over the whole last feature map (86M MACs at 224 px): it stays int8.
    """
    names = [layer.name for layer in model.layers]
    if "logits" not in names or not isinstance(model.get_layer("logits"), tf_keras.layers.Dense):
        return set()
    return set(names[names.index("logits"):])


def quantize(model):
    """The quantization-aware tf_keras twin of the Keras 3 `model`, with its weights."""
    base = twin(model)
    for layer in base.layers:  # stochastic depth trains from scratch; QAT fine-tunes what exports
        if layer.name.endswith("_drop_path"):
            layer.rate = 0.0
    # Mobile MQA's attention cores stay float, as in PTQ files (`export.convert`); the reshape
    # after each core gives the core's output its 8-bit range.
    float_names = float_classifier(base) | set(attention.core_layers(base))
    output_names = standalone_batch_norms(model) | {
        layer.name for layer in base.layers if layer.name.endswith(attention.HEADS_SUFFIX)}

    def annotate(layer):
        config = _quantize_config(layer, float_names, output_names)
        if config is None:
            return layer
        return quantize_keras.quantize_annotate_layer(layer, config)

    annotated = tf_keras.models.clone_model(base, clone_function=annotate)
    annotated = quantize_keras.quantize_annotate_model(annotated)
    with quantize_keras.quantize_scope(CUSTOM_OBJECTS):
        quantized = quantize_keras.quantize_apply(annotated, scheme=QuantizeScheme())
    if len(quantized.outputs) == 1:
        return quantized
    # A detector's outputs: tfmot's wrappers name them `quant_boxes`, `quant_classes`, and the
    # model returns a list. Losses, targets, logs and exports know them by the model's own
    # names, so the output wrappers take those names and the QAT model returns a dict.
    for layer in quantized.layers:
        if layer.name.removeprefix("quant_") in base.output_names:
            layer._name = layer.name.removeprefix("quant_")  # tf_keras has no public setter
    return tf_keras.Model(quantized.inputs, dict(zip(base.output_names, quantized.outputs)),
                          name=quantized.name)


# The narrowest activation range QAT starts from (init_ranges): wide enough for XNNPACK to
# requantize it into the concatenations it feeds (the 4e-9 scale of an empty range is not).
MIN_RANGE = 0.1


def init_ranges(quantized, model, batches):
    """Sets every activation range of `quantized` (and its input's) to the min and max of the
    float tensor it quantizes over `batches` (lists of float input batches), as post-training
    calibration does.

    tfmot starts activation ranges at [-6, 6] and moves them with a 0.999 moving average, so a
    fine-tune of a few hundred steps would end with ranges far from the data's (the input's
    [0, 255] one included). Calibrated ranges start QAT where PTQ ends.

    A range narrower than `MIN_RANGE` (a tensor all but constant over the batches: a
    prediction head that never fires, as an SSDLite's smallest map can be) is widened to it:
    the converter would give it a scale of about 4e-9, and requantizing that for the
    concatenation after it is beyond what XNNPACK takes (the PTQ converter gives a
    concatenation's inputs the concatenation's own scale instead).
    """
    base = twin(model)
    ranges = {}
    for layer in quantized.layers:
        found = {v.name.split("/")[-1].split(":")[0]: v for v in layer.non_trainable_weights}
        if isinstance(layer, quantize_keras.QuantizeWrapperV2):
            for kind in ("output", "post_activation"):
                if f"{kind}_min" in found:
                    ranges[layer.layer.name] = (found[f"{kind}_min"], found[f"{kind}_max"])
        elif f"{layer.name}_min" in found:  # tfmot's QuantizeLayer, on the model's input
            ranges[None] = (found[f"{layer.name}_min"], found[f"{layer.name}_max"])
    names = list(ranges)
    probe = tf_keras.Model(base.inputs, [base.input if name is None else base.get_layer(name).output
                                         for name in names])
    low = {name: 0.0 for name in names}
    high = {name: 0.0 for name in names}
    for batch in batches:
        for name, value in zip(names, probe(batch[0], training=False)):
            low[name] = min(low[name], float(tf.reduce_min(value)))
            high[name] = max(high[name], float(tf.reduce_max(value)))
    for name, (low_var, high_var) in ranges.items():
        high[name] = max(high[name], low[name] + MIN_RANGE)
        low_var.assign(tf.fill(low_var.shape, low[name]))
        high_var.assign(tf.fill(high_var.shape, high[name]))
    return len(ranges)


def fitted(quantized, batch_norm_frozen=False, ranges_frozen=False):
    """The model `fit` trains in a QAT phase (`training.phases.Phase`) of `quantized`.

    BatchNorm frozen: tf_keras runs a non-trainable BatchNormalization in inference mode, its
    moving statistics used and kept (its scale and offset still train: tfmot's wrapper keeps
    them in the model's trainable weights, as torchvision's recipe does). Ranges frozen: the whole
    model is called with training=False, which fixes every quantizer range (and BatchNorm),
    while gradients still flow through the fake quantization.
    """
    for layer in batch_norms(quantized):
        layer.trainable = not batch_norm_frozen
    if not ranges_frozen:
        return quantized
    inputs = tf_keras.Input(quantized.input_shape[1:], name="image")
    outputs = quantized(inputs, training=False)
    if isinstance(outputs, dict):  # named as the model's, for the losses and the logs
        outputs = {name: tf_keras.layers.Identity(name=name)(output)
                   for name, output in outputs.items()}
    return tf_keras.Model(inputs, outputs, name="frozen_ranges")


def batch_norms(quantized):
    """The BatchNormalization layers of a QAT model (inside their tfmot wrappers)."""
    inner = (getattr(layer, "layer", layer) for layer in quantized.layers)
    return [layer for layer in inner if isinstance(layer, tf_keras.layers.BatchNormalization)]


def save(quantized, path):
    """Saves a QAT model as h5: tf_keras cannot reload the .keras file it writes for a tfmot
    model, and its h5 writer fails on frozen (non-trainable) BatchNorm layers inside tfmot
    wrappers, which are therefore unfrozen while it writes."""
    frozen = [layer for layer in batch_norms(quantized) if not layer.trainable]
    for layer in frozen:
        layer.trainable = True
    try:
        with warnings.catch_warnings():  # h5 is the one format tf_keras reloads tfmot models from
            warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save")
            quantized.save(path)
    finally:
        for layer in frozen:
            layer.trainable = False


def load_model(path):
    """Loads the QAT model a QAT run saves (`model_qat.h5`)."""
    with quantize_keras.quantize_scope(CUSTOM_OBJECTS):
        return tf_keras.models.load_model(path, compile=False)
