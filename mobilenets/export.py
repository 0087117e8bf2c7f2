"""TFLite export: float32, float16, dynamic-range, full-integer int8 and int16x8 files, verified.

`export_tflite` converts a Keras model with TensorFlow's TFLite converter. `run` is train.py's
export stage: it writes `export/model_<mode>.tflite`, runs each file in LiteRT on the evaluation
split and writes `export/report.json`.
"""

import logging
import pathlib
import warnings

import numpy as np
import tensorflow as tf

from mobilenets import data as data_lib
from mobilenets import evaluation, files
from mobilenets.errors import UserError

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
                  int8_output="uint8"):
    """Converts a Keras model to TFLite bytes.

    Args:
      model: a Keras model taking float images.
      mode: "float32", "float16", "dynamic_range", "int8" (full integer, per-channel weights) or
        "int16x8" (int16 activations, int8 weights).
      representative_dataset: for int8 and int16x8, a callable yielding lists of float32
        input batches (the TFLite converter's calibration data).
      int8_input: int8 mode input type, "uint8", "int8" or "float32". Default "uint8", and
        for a model whose first layer rescales [0, 255] pixels (`include_preprocessing`) the
        input then takes raw pixels: scale 1, zero point 0.
      int8_output: int8 mode output type.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    converter = _converter(model)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode in ("int8", "int16x8"):
        if representative_dataset is None:
            raise ValueError(f"{mode} export needs a representative_dataset")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = IO_TYPES[int8_input or "uint8"]
            converter.inference_output_type = IO_TYPES[int8_output]
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    with warnings.catch_warnings():  # the converter warns about our own float input
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        content = converter.convert()
    if mode == "int8" and (int8_input or "uint8") == "uint8" and takes_pixels(model):
        content = set_input_quantization(content, scale=1.0, zero_point=0)
    return content


def takes_pixels(model):
    """True if the model's first layer maps [0, 255] pixels to [-1, 1] (include_preprocessing)."""
    first = next((layer for layer in model.layers[1:]), None)
    return (first is not None and type(first).__name__ == "Rescaling"
            and np.isclose(first.scale, 1 / 127.5) and np.isclose(first.offset, -1.0))


def set_input_quantization(content, scale, zero_point):
    """Sets the (uint8) input tensor's quantization of a converted file.

    The converter takes the input range from the calibration images; a phone app wants to copy
    camera bytes in unchanged, so the uint8 input is pinned to scale 1, zero point 0. The
    QUANTIZE op that follows it requantizes to the calibrated int8 range, so the model's
    computation is unchanged.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    subgraph = model.subgraphs[0]
    tensor = subgraph.tensors[subgraph.inputs[0]]
    consumers = [op for op in subgraph.operators if subgraph.inputs[0] in op.inputs]
    opcodes = {model.operatorCodes[op.opcodeIndex].builtinCode for op in consumers}
    from tensorflow.lite.python import schema_py_generated as schema

    if opcodes != {schema.BuiltinOperator.QUANTIZE}:
        log.warning("input is not followed by a QUANTIZE op; keeping its calibrated range")
        return content
    tensor.quantization.scale = [float(scale)]
    tensor.quantization.zeroPoint = [int(zero_point)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def delegate_partitions(content):
    """(XNNPACK partitions, names of ops left outside XNNPACK) of a .tflite file.

    LiteRT replaces each delegated run of ops with one DELEGATE node; an op is covered if it
    lies between a DELEGATE node's inputs and outputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(content), num_threads=1)
    interpreter.allocate_tensors()
    nodes = interpreter._get_ops_details()  # the only view of the execution plan LiteRT offers
    ops = [n for n in nodes if n["op_name"] != "DELEGATE"]
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    producer = {t: op for op in ops for t in op["outputs"]}
    covered = set()
    for delegate in delegates:
        stop = set(delegate["inputs"].tolist())
        todo = list(delegate["outputs"])
        while todo:
            tensor = todo.pop()
            if tensor in stop or tensor not in producer:
                continue
            op = producer[tensor]
            if op["index"] not in covered:
                covered.add(op["index"])
                todo.extend(op["inputs"].tolist())
    return len(delegates), [op["op_name"] for op in ops if op["index"] not in covered]


def representative(split, data_config, shape, count):
    """The converter's calibration callable: `count` preprocessed images, batch 1."""
    def generate():
        for image in data_lib.calibration_images(split, data_config, shape, count):
            yield [image.astype(np.float32)]
    return generate


def run(model, config, data, workdir, float_metrics, float_predicted):
    """train.py's export stage: writes, verifies and reports every `export.modes` file.

    Calibration uses training images with the evaluation preprocessing; verification runs each
    file on the evaluation split. Raises ExportCheckFailed if a file loses more than
    `export.max_drop` top-1 points against the float model.
    """
    folder = pathlib.Path(workdir) / "export"
    shape = tuple(model.input_shape[1:])
    num_classes = model.output_shape[-1]
    evaluation_split = data.eval.limit(config.export.verify_limit)
    verify = data_lib.eval_dataset(evaluation_split, config.data, shape, num_classes, 64)
    reference = float_predicted[:len(evaluation_split)]
    calibration = representative(data.train, config.data, shape,
                                 config.export.calibration_samples)
    files.write_text(folder / "labels.txt", "\n".join(data.class_names) + "\n")
    report = {"float": {"top1": float_metrics["top1"], "top5": float_metrics["top5"]},
              "images": len(evaluation_split), "files": {}}
    failures = []
    for mode in config.export.modes:
        log.info("exporting %s", mode)
        content = export_tflite(model, mode, calibration if mode in ("int8", "int16x8") else None,
                                int8_input=config.export.int8_input,
                                int8_output=config.export.int8_output)
        path = folder / f"model_{mode}.tflite"
        files.write_bytes(path, content)
        entry = verify_file(content, verify, data.class_names, reference)
        entry["drop"] = round(100 * (report["float"]["top1"] - entry["top1"]), 3)
        report["files"][path.name] = entry
        log.info("%s: top-1 %.4f (float %.4f), agreement %.4f, %.2f MB, %s ms, %d partition(s)",
                 path.name, entry["top1"], report["float"]["top1"], entry["agreement"],
                 entry["size_mb"], entry["median_latency_ms"], entry["partitions"])
        if entry["drop"] > config.export.max_drop:
            failures.append(f"{path.name} loses {entry['drop']:.2f} top-1 points "
                            f"(export.max_drop {config.export.max_drop})")
    files.write_json(folder / "report.json", report)
    if failures:
        raise ExportCheckFailed("; ".join(failures) + f"; see {folder / 'report.json'}")
    return report


def verify_file(content, dataset, class_names, reference_predicted):
    """Runs a .tflite file on `dataset`: accuracy, agreement, size, latency, partitions."""
    runner = evaluation.TFLiteModel(content, threads=1)
    outputs, labels = [], []
    for images, one_hot in dataset:
        outputs.append(runner(np.asarray(images)))
        labels.append(np.argmax(one_hot, axis=1))
    probabilities = np.concatenate(outputs)
    result = evaluation.scores(probabilities, np.concatenate(labels), class_names)
    partitions, outside = delegate_partitions(content)
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
