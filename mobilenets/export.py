"""TFLite export: float32, float16, dynamic-range, full-integer int8 and int16x8 files, verified.

`export_tflite` converts a Keras model with TensorFlow's TFLite converter. `run` is train.py's
export stage: it writes `export/model_<mode>.tflite`, runs each file in LiteRT on the evaluation
split and writes `export/report.json`.
"""

import dataclasses
import logging
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from mobilenets import data as data_lib
from mobilenets import evaluation, files, metadata, quant_debug, xnnpack
from mobilenets.errors import UserError
from mobilenets.version import __version__

log = logging.getLogger("mobilenets")

MODES = ("float32", "float16", "dynamic_range", "int8", "int16x8")
IO_TYPES = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}


class ExportCheckFailed(Exception):
    """An exported file lost more accuracy than `export.max_drop` allows."""


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
                  int8_output="float32", float_layers=()):
    """Converts a Keras model to TFLite bytes.

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
        match whole names, whose ops stay in float (selective quantization).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    int8_input = int8_input or "uint8"
    pixels = mode == "int8" and int8_input == "uint8" and takes_pixels(model)
    quantized = mode in ("int8", "int16x8")
    qat_model = is_qat(model)
    if quantized and representative_dataset is None and not qat_model:
        raise ValueError(f"{mode} export needs a representative_dataset")
    if qat_model and int8_output != "float32":
        raise ValueError("export.int8_output: a QAT model's int8 file returns float32 "
                         "probabilities (its classifier and softmax run in float), not "
                         + int8_output)
    if float_layers and not quantized:
        raise ValueError(f"float_layers applies to int8 and int16x8, not {mode}")

    def converter():
        if mode == "int8" and qat_model:
            return _qat_configured(model, tf.float32 if pixels else IO_TYPES[int8_input],
                                   IO_TYPES[int8_output])
        return _configured(model, mode, representative_dataset,
                           tf.float32 if pixels else IO_TYPES[int8_input], IO_TYPES[int8_output])

    with warnings.catch_warnings():  # the converter warns about our own float input
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        content = converter().convert()
        if float_layers:
            nodes = quant_debug.matching_nodes(content, float_layers,
                                               [layer.name for layer in model.layers])
            mixed = converter()
            mixed.target_spec.supported_ops = [*mixed.target_spec.supported_ops,
                                               tf.lite.OpsSet.TFLITE_BUILTINS]
            content = quant_debug.selective(mixed, representative_dataset, nodes)
    if mode == "int8":
        content = xnnpack.rewire_int8(content, pixels_input=pixels,
                                      float_softmax=int8_output == "float32")
    return content


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


def representative(split, data_config, shape, count):
    """The converter's calibration callable: `count` preprocessed images, batch 1."""
    def generate():
        for image in data_lib.calibration_images(split, data_config, shape, count):
            yield [image.astype(np.float32)]
    return generate


def run(model, config, data, workdir, modes=None, reference=None):
    """The export stage: writes, verifies and reports every `export.modes` file.

    Calibration uses training images with the evaluation preprocessing; verification runs each
    file on the evaluation split (its first `export.verify_limit` images) and compares it with
    the Keras `model` on the same images: `reference` is the model's (probabilities, labels)
    on the evaluation split, computed here if not given. Raises ExportCheckFailed if a file
    loses more than `export.max_drop` top-1 points; a quantized file that does gets a per-layer
    error report (`export/debug_<mode>.csv`), as every one does with `export.debug`.
    `modes` defaults to `export.modes`; "qat_int8" is the int8 file of a QAT model.
    """
    settings = config.export
    folder = pathlib.Path(workdir) / "export"
    shape = tuple(model.input_shape[1:])
    num_classes = model.output_shape[-1]
    evaluation_split = data.eval.limit(settings.verify_limit)
    verify = data_lib.eval_dataset(evaluation_split, config.data, shape, num_classes, 64)
    if reference is None:
        reference = evaluation.keras_predictions(model, verify)
    count = len(evaluation_split)
    probabilities, labels = reference[0][:count], reference[1][:count]
    keras_scores = evaluation.scores(probabilities, labels, data.class_names)
    calibration = representative(data.train, config.data, shape, settings.calibration_samples)
    files.write_text(folder / "labels.txt", "\n".join(data.class_names) + "\n")
    report = {"float": {"top1": keras_scores["top1"], "top5": keras_scores["top5"]},
              "keras_model": "model_qat.h5" if config.qat.enabled else "model.keras",
              "images": count, "files": {}}
    failures = []
    for name in modes or settings.modes:
        log.info("exporting %s", name)
        mode = name.removeprefix("qat_")
        quantized = mode in ("int8", "int16x8")
        try:
            content = export_tflite(
                model, mode, calibration if quantized else None, int8_input=settings.int8_input,
                int8_output=settings.int8_output,
                float_layers=settings.float_layers if quantized and name == mode else ())
        except ValueError as error:
            if str(error).startswith(("export.", "float_layers")):
                raise UserError(str(error)) from None
            raise
        if settings.metadata:
            content = metadata.add_metadata(
                content, labels=data.class_names, name=model.name,
                description=f"{config.model.name} image classifier, {name} TFLite, trained "
                            f"with mobilenets on {config.data.name or config.data.source}",
                version=__version__, author="mobilenets")
        path = folder / f"model_{name}.tflite"
        files.write_bytes(path, content)
        entry = verify_file(content, verify, data.class_names, probabilities.argmax(1))
        entry["drop"] = round(100 * (report["float"]["top1"] - entry["top1"]), 3)
        report["files"][path.name] = entry
        log.info("%s: top-1 %.4f (Keras %.4f), agreement %.4f, %.2f MB, %s ms, %d partition(s)",
                 path.name, entry["top1"], report["float"]["top1"], entry["agreement"],
                 entry["size_mb"], entry["median_latency_ms"], entry["partitions"])
        failed = entry["drop"] > settings.max_drop
        if quantized and name == mode and (failed or settings.debug):
            entry["debug_report"] = write_debug_report(model, mode, calibration, settings,
                                                       folder / f"debug_{name}.csv")
        if failed:
            failures.append(f"{path.name} loses {entry['drop']:.2f} top-1 points "
                            f"(export.max_drop {settings.max_drop})"
                            + (f"; per-layer errors in {folder / entry['debug_report']}"
                               if "debug_report" in entry else ""))
    files.write_json(folder / "report.json", report)
    if failures:
        raise ExportCheckFailed("; ".join(failures) + f"; see {folder / 'report.json'}")
    return report


def export_model(config, model_path, workdir=None, modes=None):
    """`python -m mobilenets export`: exports a saved model (`.keras`, or a QAT run's `.h5`)
    like train.py's export stage, into `<workdir>/export/` (default: the model's folder)."""
    from mobilenets import runtime
    from mobilenets.evaluate import load_model

    path = pathlib.Path(model_path)
    for mode in modes or ():
        if mode not in MODES:
            raise UserError(f"--modes: unknown mode {mode!r}; valid: {', '.join(MODES)}")
    qat_model = path.suffix == ".h5"
    if qat_model and modes and list(modes) != ["int8"]:
        raise UserError(f"--model {path} is a QAT model: it exports to int8 only "
                        "(model_qat_int8.tflite)")
    model = load_model(path)
    runtime.setup(config.runtime, config.train)
    data = data_lib.load(config.data, seed=config.train.seed)
    if len(data.class_names) != model.output_shape[-1]:
        raise UserError(f"--model {path} predicts {model.output_shape[-1]} classes but the "
                        f"data has {len(data.class_names)}")
    if qat_model:
        config = dataclasses.replace(config, qat=dataclasses.replace(config.qat, enabled=True))
    return run(model, config, data, workdir or path.parent,
               modes=["qat_int8"] if qat_model else (modes or config.export.modes))


def write_debug_report(model, mode, calibration, settings, path):
    """Writes the per-layer error report CSV; logs the worst layers; returns the file name."""
    def debug_dataset():
        for index, batch in enumerate(calibration()):
            if index == settings.debug_samples:
                return
            yield batch

    log.info("running the quantization debugger on %d images", settings.debug_samples)
    rows = quantization_report(model, mode, calibration, debug_dataset)
    quant_debug.write_csv(rows, path)
    for row in rows[:5]:
        log.info("  %-40s %-18s rmse/scale %.2f", row["layers"][:40], row["op"],
                 row["rmse_over_scale"])
    return path.name


def verify_file(content, dataset, class_names, reference_predicted):
    """Runs a .tflite file on `dataset`: accuracy, agreement, size, latency, partitions."""
    runner = evaluation.TFLiteModel(content, threads=1)
    probabilities, labels = evaluation.tflite_predictions(runner, dataset)
    result = evaluation.scores(probabilities, labels, class_names)
    partitions, outside = xnnpack.delegate_partitions(content)
    return {
        "top1": result["top1"], "top5": result["top5"],
        "agreement": float((probabilities.argmax(1) == reference_predicted).mean()),
        "size_mb": round(len(content) / 2**20, 3),
        "median_latency_ms": round(runner.median_latency_ms, 3),
        "partitions": partitions, "ops_outside_xnnpack": outside,
        "input": describe(runner.input), "output": describe(runner.output),
    }


def describe(details):
    scale, zero = details["quantization"]
    return {"dtype": np.dtype(details["dtype"]).name, "shape": details["shape"].tolist(),
            "scale": scale, "zero_point": zero}


def check_tflite_path(path):
    """Raises UserError unless `path` is a readable TFLite flatbuffer."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite file (no TFL3 identifier)")
    return path
