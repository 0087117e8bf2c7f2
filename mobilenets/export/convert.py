"""Conversion to TFLite: float32, float16, dynamic-range, full-integer int8 and int16x8 files,
with TensorFlow's TFLite converter, edited so that XNNPACK runs them whole (`tflite.xnnpack`).
"""

import logging
import warnings

import keras
import numpy as np
import tensorflow as tf

from mobilenets import console
from mobilenets.errors import ExportCheckFailed, ExportOptionError
from mobilenets.export import quant_debug, rgb
from mobilenets.models import attention
from mobilenets.tflite import signature, xnnpack

MODES = ("float32", "float16", "dynamic_range", "int8", "int16x8")
FLOAT_ACTIVATIONS = ("float32", "float16", "dynamic_range")  # modes whose activations are float
IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}

log = logging.getLogger("mobilenets")


def _converter(model):
    """A converter for `model` with a static batch-1 signature (what phones run)."""
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")

    @tf.function(input_signature=[spec])
    def serve(image):
        return model(image, training=False)

    # The trackable handed to the converter is a module holding the function: handing it the
    # Keras 3 model itself leaves READ_VARIABLE ops that fail during int8 calibration.
    holder = tf.Module()
    holder.serve = serve
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()],
                                                           holder)


def export_tflite(model, mode, representative_dataset=None, *, int8_input=None,
                  int8_output="float32", float_layers=(), rgb_input=False, qat=None,
                  quantizer="converter"):
    """Converts a Keras model to TFLite bytes, with a `serving_default` signature whose input
    is `image` and whose outputs are named after the model's.

    Args:
      model: a Keras model taking float images.
      mode: "float32", "float16", "dynamic_range", "int8" (full integer, per-channel weights) or
        "int16x8" (int16 activations, int8 weights).
      representative_dataset: for int8 and int16x8, a callable yielding lists of float32
        input batches (the TFLite converter's calibration data). Not used for a QAT model,
        whose int8 file takes every range from the model's own quantizers.
      int8_input: int8 mode input type, "uint8", "int8" or "float32". Default "uint8"; for a
        model whose first layer rescales [0, 255] pixels (`include_preprocessing`) the uint8
        input then takes raw pixels: scale 1, zero point 0.
      int8_output: int8 mode output type. Default "float32": the final softmax then runs in
        float, so the whole graph stays inside XNNPACK, which has no int8 softmax.
      float_layers: int8 and int16x8: names of Keras layers, or regular expressions that
        match whole names, whose ops stay in float (selective quantization). An int8 file also
        keeps Mobile MQA's attention cores in float (`models.attention`): XNNPACK has no int8
        SOFTMAX, takes int8 BATCH_MATMULs only in some cases, and runs both in float inside the
        same partition.
      rgb_input: a model of 1 input channel becomes a file taking RGB pixels, computing the
        model on their luma (`export.rgb`); `representative_dataset` then yields RGB images.
      qat: whether `model` is a quantization-aware (tfmot) model, as its `artifacts.Artifact`
        says; None: told from its layers (`is_qat`), for a model handed in directly.
      quantizer: who quantizes an int8 file: "converter" (the TFLite converter) or "litert"
        (the LiteRT Quantizer, from this model's float32 file: `litert_quantizer.quantize`).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    int8_input = int8_input or "uint8"
    pixels = mode == "int8" and int8_input == "uint8" and takes_pixels(model)
    quantized = mode in ("int8", "int16x8")
    qat_model = is_qat(model) if qat is None else qat
    if quantized and representative_dataset is None and not qat_model:
        raise ValueError(f"{mode} export needs a representative_dataset")
    if qat_model and int8_output != "float32":
        raise ExportOptionError("export.int8_output: a QAT model's int8 file returns float32 "
                                "probabilities (its classifier and softmax run in float), not "
                                + int8_output)
    if float_layers and not quantized:
        raise ExportOptionError(f"export.float_layers applies to int8 and int16x8, not {mode}")
    if mode == "int8" and quantizer == "litert":
        _check_litert_options(pixels, int8_input, int8_output, float_layers, qat_model)
    if mode == "int8" and not qat_model:
        float_layers = [*float_layers, *attention.core_layers(model)]

    # (a QAT model's layers are tfmot wrappers named "quant_<layer>")
    output_names = [name.removeprefix("quant_") for name in model.output_names]
    if rgb_input and model.input_shape[-1] == 1:
        if qat_model:
            from mobilenets import keras2

            model = keras2.rgb_wrapper(model, rgb.LUMA)
        else:
            model = rgb.rgb_model(model)
    if mode == "int8" and quantizer == "litert":
        return _litert_int8(model, representative_dataset, output_names)
    if mode in FLOAT_ACTIVATIONS and not qat_model:
        model = fused_hard_swish(model)

    def converter():
        if mode == "int8" and qat_model:
            return _qat_configured(model, tf.float32 if pixels else IO_TYPES[int8_input],
                                   IO_TYPES[int8_output])
        return _configured(model, mode, representative_dataset,
                           tf.float32 if pixels else IO_TYPES[int8_input], IO_TYPES[int8_output])

    def mixed(nodes):  # the ops that output `nodes` in float, the rest quantized
        converter_ = converter()
        converter_.target_spec.supported_ops = [*converter_.target_spec.supported_ops,
                                                tf.lite.OpsSet.TFLITE_BUILTINS]
        return quant_debug.selective(converter_, representative_dataset, nodes)

    layer_names = [layer.name for layer in model.layers]
    with warnings.catch_warnings():  # the converter warns about our own float input
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        with console.quiet_native():  # the converter prints its settings
            content = converter().convert()
        nodes = []
        if float_layers:
            nodes = quant_debug.matching_nodes(content, float_layers, layer_names)
            content = mixed(nodes)
        if mode == "int8":
            content = within_xnnpack_limits(content, nodes, mixed, layer_names, qat_model)
    if mode == "int8":
        content = xnnpack.rewire_int8(content, pixels_input=pixels,
                                      float_softmax=int8_output == "float32")
    return signature.add_signature(content, ["image"], output_names)


def _check_litert_options(pixels, int8_input, int8_output, float_layers, qat_model):
    """What the LiteRT Quantizer's files are made with here: a float model, no float layers,
    uint8 pixels in and float32 out (the phone's contract)."""
    if qat_model:
        raise ExportOptionError("export.quantizer: litert quantizes a float model; a QAT "
                                "model's int8 file takes its ranges from training (converter)")
    if float_layers:
        raise ExportOptionError("export.float_layers applies to the converter's int8 files, "
                                "not export.quantizer: litert")
    if not pixels or int8_output != "float32":
        raise ExportOptionError(
            "export.quantizer: litert makes files of uint8 pixels in (export.int8_input: "
            "uint8, a model that rescales pixels itself) and float32 out (export.int8_output:"
            f" float32), not {int8_input} in and {int8_output} out")


def _litert_int8(model, representative_dataset, output_names):
    """The LiteRT Quantizer's int8 file of `model` (RGB-wrapped already where asked) with the
    phone's contract: uint8 pixels in, float32 probabilities out. It quantizes a float32
    conversion of `model` whose hard-swish stays the ops it is made of: the float32 files' fused
    HARD_SWISH would become an int8 HARD_SWISH, which XNNPACK does not run."""
    from mobilenets.export import litert_quantizer

    with console.quiet_native():
        float_content = _configured(model, "float32", None).convert()
    float_content = signature.add_signature(float_content, ["image"], output_names)
    content = litert_quantizer.quantize(float_content, representative_dataset)
    content = xnnpack.rewire_int8(content, pixels_input=True, float_softmax=True)
    return signature.add_signature(content, ["image"], output_names)


def within_xnnpack_limits(content, nodes, mixed, layer_names, qat_model):
    """`content`, or, if XNNPACK cannot build some of its int8 ops
    (`xnnpack.requantization_overflows`: LiteRT would fail on the file or abort the process),
    the file converted again by `mixed(nodes)` with those ops in float, as often as new ones
    appear (each time the calibration moves the ranges around them). A QAT file's ranges are
    the model's own: it is refused (ExportCheckFailed) instead."""
    for _ in range(3):
        overflows = xnnpack.requantization_overflows(content)
        if not overflows:
            return content
        named = "; ".join(f"{' '.join(quant_debug.layers_of(o.tensor, layer_names)) or o.tensor}"
                          f" ({o.op}, requantization scale {o.scale:.0f})" for o in overflows)
        if qat_model:
            raise ExportCheckFailed(
                f"int8: XNNPACK cannot run {named}: its input range is too wide for its output's "
                f"(the scale must be below {xnnpack.REQUANTIZATION_LIMIT:.0f}), and LiteRT fails "
                "or aborts on such a file; train longer before QAT, or export the float model "
                "with PTQ")
        log.warning("int8: %s kept in float: XNNPACK cannot run them in int8 (requantization "
                    "scale must be below %.0f; LiteRT fails or aborts on such a file)", named,
                    xnnpack.REQUANTIZATION_LIMIT)
        nodes = [*nodes, *(o.tensor for o in overflows)]
        content = mixed(nodes)
    raise ExportCheckFailed(f"int8: XNNPACK still cannot run {named} after keeping it in float")


def _configured(model, mode, representative_dataset, input_type=tf.float32,
                output_type=tf.float32):
    """A converter set up for `mode` (see `export_tflite`)."""
    converter = _converter(model)
    if mode == "float32":
        return converter
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = input_type
        converter.inference_output_type = output_type
    elif mode == "int16x8":
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return converter


def _qat_configured(model, input_type, output_type):
    """A converter for a QAT model's int8 file: every int8 range is the one the QAT model
    trained with (no calibration), and the ops it leaves unquantized (the classifier) stay
    float."""
    converter = _converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.inference_input_type = input_type
    converter.inference_output_type = output_type
    return converter


def is_qat(model):
    """True for a quantization-aware (tfmot) model."""
    return any(type(layer).__name__ == "QuantizeWrapperV2" for layer in model.layers)


def quantization_report(model, mode, representative_dataset, debug_dataset):
    """Per-layer quantization errors of `model` in `mode` (int8 or int16x8) on `debug_dataset`
    (see `quant_debug.layer_report`), worst first."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        return quant_debug.layer_report(_configured(model, mode, representative_dataset),
                                         debug_dataset, [layer.name for layer in model.layers])


def takes_pixels(model):
    """True if the model's first layer maps [0, 255] pixels to [-1, 1] (include_preprocessing).

    In a QAT model that layer is wrapped (`.layer`), after tfmot's input QuantizeLayer.
    """
    inner = [getattr(layer, "layer", layer) for layer in model.layers[1:]]
    first = next((layer for layer in inner if type(layer).__name__ != "QuantizeLayer"), None)
    return (first is not None and type(first).__name__ == "Rescaling"
            and np.isclose(first.scale, 1 / 127.5) and np.isclose(first.offset, -1.0))


def fused_hard_swish(model):
    """`model` with each hard-swish computed as x * (relu6(x + 3) / 6): the same layers and
    weights, only the Rescaling by 1/6 moved from x to the gate. The converter fuses that
    order into one HARD_SWISH op, which XNNPACK runs in float as one kernel (11-18% faster
    MobileNetV3 files); the builders' order, (x / 6) * relu6(x + 3), converts to ADD, MUL, MUL,
    which int8 files need (XNNPACK has no int8 HARD_SWISH). A model without hard-swish is
    returned as it is.

    The builders name a hard-swish's layers `<p>_shift`, `<p>_relu6`, `<p>_scale` and `<p>`
    (the Multiply); the model is cloned with its layers shared and the Multiply's inputs
    rewired.
    """
    names = {layer.name for layer in model.layers}
    prefixes = {name[:-len("_scale")] for name in names
                if name.endswith("_hswish_scale") and name[:-len("_scale")] in names}
    if not prefixes:
        return model
    scales, inputs_of = {}, {}

    def call(layer, *args, **kwargs):
        name = layer.name
        if name.endswith("_scale") and name[:-len("_scale")] in prefixes:
            scales[name[:-len("_scale")]] = layer
            inputs_of[name[:-len("_scale")]] = args[0]  # x; this call's x / 6 goes unused
        if name in prefixes:  # the Multiply: [x / 6, gate] becomes [x, gate / 6]
            _, gate = args[0]
            return layer([inputs_of[name], scales[name](gate)], **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)
