"""Selective quantization and the per-layer quantization error report, with TensorFlow's
`tf.lite.experimental.QuantizationDebugger`.

The converter names each op's output tensor after the Keras layers fused into it
(`model/block3_dw_conv_1/depthwise;model/block3_dw_bn_1/...`), so layers are found by name.
"""

import contextlib
import csv
import io
import math
import re
import warnings

import tensorflow as tf

from mobilenets import compat, console, files
from mobilenets.errors import ExportOptionError


@contextlib.contextmanager
def _quiet():
    """The debugger runs TensorFlow's deprecated tf.lite.Interpreter (it has no LiteRT path),
    and the converter prints its settings."""
    with warnings.catch_warnings(), console.quiet_native():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        yield


def layers_of(tensor_name, layer_names):
    """The Keras layers (of the list `layer_names`) that a converted op's output tensor name
    mentions, in model order."""
    order = {name: index for index, name in enumerate(layer_names)}
    found = []
    for part in tensor_name.split(";"):
        pieces = part.split("/")
        if len(pieces) < 2:
            continue
        # Keras suffixes a layer's name scope with its call count ("block3_dw_conv_1").
        for candidate in (pieces[1], re.sub(r"_\d+$", "", pieces[1])):
            if candidate in order and candidate not in found:
                found.append(candidate)
                break
    return sorted(found, key=order.get)


def matching_nodes(content, patterns, layer_names):
    """Output tensor names of the ops of the .tflite `content` whose layers fully match one of
    the regular expressions `patterns`. Raises ExportOptionError for a pattern that matches no
    layer."""
    from ai_edge_litert.interpreter import Interpreter

    with console.quiet_native():
        interpreter = Interpreter(model_content=bytes(content))
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    compiled = []
    for pattern in patterns:
        try:
            compiled.append((pattern, re.compile(pattern)))
        except re.error as error:
            raise ExportOptionError(f"export.float_layers: {pattern!r} is not a valid "
                                    f"regular expression ({error})") from None
    used, nodes = set(), []
    for op in compat.ops_details(interpreter):
        for tensor in op["outputs"]:
            layers = layers_of(names.get(int(tensor), ""), layer_names)
            hits = {p for p, regex in compiled for layer in layers if regex.fullmatch(layer)}
            if hits:
                used |= hits
                nodes.append(names[int(tensor)])
    unused = [p for p, _ in compiled if p not in used]
    if unused:
        raise ExportOptionError(f"export.float_layers: {unused[0]!r} matches no quantized layer "
                                "of the model (give layer names, e.g. block3_project_conv, or "
                                "regular expressions over them, e.g. block1[0-5]_.*)")
    return nodes


def selective(converter, representative_dataset, nodes):
    """Converts with the ops that output `nodes` left in float (the rest quantized)."""
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(nodes))
    with _quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=representative_dataset, debug_options=options)
        return debugger.get_nondebug_quantized_model()


def layer_report(converter, debug_dataset, layer_names):
    """Per-layer quantization error of a calibrated converter on `debug_dataset`.

    Returns rows worst first by `rmse_over_scale`: the root-mean-square difference between an
    op's float output and its dequantized output, in steps of the output's quantization scale.
    Rounding alone gives about 0.29 (1 / sqrt(12)); much more means the layer's range is too
    wide for 8 bits (a candidate for `export.float_layers`).
    """
    with _quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                             debug_dataset=debug_dataset)
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    rows = []
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row["scale"])
        mse = float(row["mean_squared_error"])
        rows.append({
            "layers": " ".join(layers_of(row["tensor_name"], layer_names)),
            "op": row["op_name"],
            "rmse_over_scale": math.sqrt(mse) / scale if scale else float("nan"),
            "mean_squared_error": mse,
            "max_abs_error": float(row["max_abs_error"]),
            "scale": scale,
            "zero_point": int(float(row["zero_point"])),
            "tensor": row["tensor_name"],
        })
    rows.sort(key=lambda r: -r["rmse_over_scale"] if not math.isnan(r["rmse_over_scale"]) else 0)
    return rows


def write_csv(rows, path):
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]) if rows else ["layers"])
    writer.writeheader()
    writer.writerows(rows)
    files.write_text(path, text.getvalue())
