"""TFLite export: float32, float16, dynamic-range, full-integer int8 and int16x8 files, verified.

`export_tflite` converts a Keras model with TensorFlow's TFLite converter. `run` is train.py's
export stage: it writes `export/model_<mode>.tflite`, runs each file in LiteRT on the evaluation
split and writes `export/report.json`.
"""

import copy
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
                  int8_output="float32"):
    """Converts a Keras model to TFLite bytes.

    Args:
      model: a Keras model taking float images.
      mode: "float32", "float16", "dynamic_range", "int8" (full integer, per-channel weights) or
        "int16x8" (int16 activations, int8 weights).
      representative_dataset: for int8 and int16x8, a callable yielding lists of float32
        input batches (the TFLite converter's calibration data).
      int8_input: int8 mode input type, "uint8", "int8" or "float32". Default "uint8"; for a
        model whose first layer rescales [0, 255] pixels (`include_preprocessing`) the uint8
        input then takes raw pixels: scale 1, zero point 0.
      int8_output: int8 mode output type. Default "float32": the final softmax then runs in
        float, so the whole graph stays inside XNNPACK, which has no int8 softmax.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    int8_input = int8_input or "uint8"
    pixels = mode == "int8" and int8_input == "uint8" and takes_pixels(model)
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
            converter.inference_input_type = tf.float32 if pixels else IO_TYPES[int8_input]
            converter.inference_output_type = IO_TYPES[int8_output]
        else:
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    with warnings.catch_warnings():  # the converter warns about our own float input
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        content = converter.convert()
    if mode == "int8" and (pixels or int8_output == "float32"):
        content = _rewire_int8(content, pixels_input=pixels,
                               float_softmax=int8_output == "float32")
    return content


def takes_pixels(model):
    """True if the model's first layer maps [0, 255] pixels to [-1, 1] (include_preprocessing).

    In a QAT model that layer is wrapped (`.layer`), after tfmot's input QuantizeLayer.
    """
    inner = [getattr(layer, "layer", layer) for layer in model.layers[1:]]
    first = next((layer for layer in inner if type(layer).__name__ != "QuantizeLayer"), None)
    return (first is not None and type(first).__name__ == "Rescaling"
            and np.isclose(first.scale, 1 / 127.5) and np.isclose(first.offset, -1.0))


def _rewire_int8(content, pixels_input, float_softmax):
    """Edits a full-integer file so that XNNPACK runs all of it (the converter offers neither):

    - pixels_input: the float input becomes a uint8 input with scale 1 and zero point 0 (camera
      bytes as they are) followed by DEQUANTIZE; XNNPACK runs DEQUANTIZE and the converter's
      QUANTIZE to int8, but not the uint8-to-int8 QUANTIZE the converter emits for uint8 input.
    - float_softmax: SOFTMAX (int8) -> DEQUANTIZE becomes DEQUANTIZE -> SOFTMAX (float32);
      XNNPACK has no int8 softmax.
    Outputs are unchanged up to the softmax's own rounding (tests check agreement).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]

    def opcode(op):
        return model.operatorCodes[op.opcodeIndex].builtinCode

    if pixels_input:
        source = graph.inputs[0]
        pixels = copy.deepcopy(graph.tensors[source])
        pixels.name, pixels.type = b"image_uint8", schema.TensorType.UINT8
        pixels.quantization = schema.QuantizationParametersT()
        pixels.quantization.scale, pixels.quantization.zeroPoint = [1.0], [0]
        graph.tensors.append(pixels)
        dequantize = schema.OperatorT()
        dequantize.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.DEQUANTIZE)
        dequantize.inputs, dequantize.outputs = [len(graph.tensors) - 1], [source]
        graph.operators.insert(0, dequantize)
        graph.inputs = [len(graph.tensors) - 1]
    if float_softmax:
        producer = {out: op for op in graph.operators for out in op.outputs}
        last = producer.get(graph.outputs[0])
        softmax = producer.get(last.inputs[0]) if last is not None else None
        if (last is not None and opcode(last) == schema.BuiltinOperator.DEQUANTIZE
                and softmax is not None and opcode(softmax) == schema.BuiltinOperator.SOFTMAX):
            logits, middle = softmax.inputs[0], softmax.outputs[0]
            graph.tensors[middle].type = schema.TensorType.FLOAT32
            graph.tensors[middle].quantization = None
            last.inputs, last.outputs = [logits], [middle]
            softmax.inputs, softmax.outputs = [middle], [graph.outputs[0]]
            graph.operators.remove(last)
            graph.operators.insert(graph.operators.index(softmax), last)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode_index(model, builtin):
    from tensorflow.lite.python import schema_py_generated as schema

    for index, code in enumerate(model.operatorCodes):
        if code.builtinCode == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


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


def run(model, config, data, workdir, float_metrics, float_predicted, modes=None):
    """train.py's export stage: writes, verifies and reports every `export.modes` file.

    Calibration uses training images with the evaluation preprocessing; verification runs each
    file on the evaluation split. Raises ExportCheckFailed if a file loses more than
    `export.max_drop` top-1 points against the float model (for "qat_int8", the int8 file of
    a QAT model, that is the QAT model in Keras).
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
              "keras_model": "model_qat.h5" if config.qat.enabled else "model.keras",
              "images": len(evaluation_split), "files": {}}
    failures = []
    for name in modes or config.export.modes:
        log.info("exporting %s", name)
        mode = name.removeprefix("qat_")
        content = export_tflite(model, mode, calibration if mode in ("int8", "int16x8") else None,
                                int8_input=config.export.int8_input,
                                int8_output=config.export.int8_output)
        path = folder / f"model_{name}.tflite"
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
    probabilities, labels = evaluation.tflite_predictions(runner, dataset)
    result = evaluation.scores(probabilities, labels, class_names)
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
