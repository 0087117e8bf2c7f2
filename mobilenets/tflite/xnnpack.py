"""Edits of converted int8 TFLite graphs so that XNNPACK runs them whole, and the checks.

The TFLite converter emits a few int8 ops that XNNPACK (LiteRT's default CPU delegate) does not
run: they fall back to TFLite's reference kernels and split the graph into several delegate
partitions, each costing a copy in and out. `rewire_int8` replaces them with equivalent ops
XNNPACK runs; `delegate_partitions` counts the partitions and names the ops left outside.
`requantization_overflows` finds the int8 ops XNNPACK accepts but cannot build, which make
LiteRT fail or abort the process.
"""

import copy
import dataclasses

import numpy as np

from mobilenets import compat, console


def rewire_int8(content, pixels_input, float_softmax):
    """Edits a full-integer file so that XNNPACK runs all of it:

    - pixels_input: the float input becomes a uint8 input with scale 1 and zero point 0 (camera
      bytes as they are) followed by DEQUANTIZE; XNNPACK runs DEQUANTIZE and the converter's
      QUANTIZE to int8, but not the uint8-to-int8 QUANTIZE the converter emits for uint8 input.
      An int8 input (the LiteRT Quantizer's files) gets the same uint8 input, DEQUANTIZE and a
      QUANTIZE to it. A signature the file has takes the new input (LiteRT's CompiledModel
      fails on a signature whose input is not the graph's).
    - float_softmax: SOFTMAX (int8) -> DEQUANTIZE becomes DEQUANTIZE -> SOFTMAX (float32),
      wherever it is (the classifier's output, the scores a detection post-process takes), and
      an int8 SOFTMAX that is the graph's output (the LiteRT Quantizer's) gets DEQUANTIZE before
      it and a float32 output; XNNPACK has no int8 softmax.
    - always: a standalone int8 RELU / RELU6 fed by an ADD (Xception's pre-activations: the
      ADD's output also feeds the shortcut, so the converter cannot fuse them) becomes a second
      ADD of the same inputs with the activation fused; XNNPACK has no standalone int8 RELU.
      That ADD rounds once instead of twice, so its output may differ by one step.
    - always: an int8 GELU (MobileNetV4 Hybrid-L) or BATCH_MATMUL (the product of a QAT
      model's attention weights and values, whose range the reshape after it gives it) becomes
      DEQUANTIZE -> the op in float32 -> QUANTIZE: XNNPACK has no int8 GELU and left the int8
      BATCH_MATMULs of a QAT Hybrid-L outside once a training step had moved their ranges; it
      runs all three.
    Outputs are otherwise unchanged up to the softmax's own rounding (tests check it).
    """
    schema = compat.tflite_schema()
    flatbuffer_utils = compat.tflite_flatbuffer_utils()

    model = read_model(content)
    graph = model.subgraphs[0]

    def opcode(op):
        return model.operatorCodes[op.opcodeIndex].builtinCode

    if pixels_input:
        source = graph.inputs[0]
        pixels = _tensor_like(graph, source, b"image_uint8", schema.TensorType.UINT8)
        graph.tensors[pixels].quantization = schema.QuantizationParametersT()
        graph.tensors[pixels].quantization.scale = [1.0]
        graph.tensors[pixels].quantization.zeroPoint = [0]
        if graph.tensors[source].type == schema.TensorType.FLOAT32:  # the converter's
            graph.operators.insert(0, _conversion(model, schema.BuiltinOperator.DEQUANTIZE,
                                                  pixels, source))
        else:  # an int8 input: uint8 -> float -> int8, each a conversion XNNPACK runs
            middle = _tensor_like(graph, source, b"image_float", schema.TensorType.FLOAT32)
            graph.operators[0:0] = [
                _conversion(model, schema.BuiltinOperator.DEQUANTIZE, pixels, middle),
                _conversion(model, schema.BuiltinOperator.QUANTIZE, middle, source)]
        graph.inputs = [pixels]
        for signature in model.signatureDefs or []:  # the converter's own, if it wrote one
            for entry in signature.inputs or []:
                if entry.tensorIndex == source:
                    entry.tensorIndex = pixels
    if float_softmax:
        for softmax in [op for op in graph.operators
                        if opcode(op) == schema.BuiltinOperator.SOFTMAX
                        and op.outputs[0] in graph.outputs
                        and graph.tensors[op.outputs[0]].type == schema.TensorType.INT8]:
            logits = _tensor_like(graph, softmax.inputs[0], b"logits_float",
                                  schema.TensorType.FLOAT32)
            dequantize = _conversion(model, schema.BuiltinOperator.DEQUANTIZE,
                                     softmax.inputs[0], logits)
            softmax.inputs = [logits]
            output = graph.tensors[softmax.outputs[0]]
            output.type, output.quantization = schema.TensorType.FLOAT32, None
            graph.operators.insert(graph.operators.index(softmax), dequantize)
        producer = {out: op for op in graph.operators for out in op.outputs}
        pairs = [(producer.get(op.inputs[0]), op) for op in graph.operators
                 if opcode(op) == schema.BuiltinOperator.DEQUANTIZE]
        for softmax, last in pairs:
            if softmax is None or opcode(softmax) != schema.BuiltinOperator.SOFTMAX:
                continue
            logits, middle = softmax.inputs[0], softmax.outputs[0]
            graph.tensors[middle].type = schema.TensorType.FLOAT32
            graph.tensors[middle].quantization = None
            target = last.outputs[0]
            last.inputs, last.outputs = [logits], [middle]
            softmax.inputs, softmax.outputs = [middle], [target]
            graph.operators.remove(last)
            graph.operators.insert(graph.operators.index(softmax), last)
    _fuse_activations_into_adds(model, graph)
    _in_float(model, graph, {schema.BuiltinOperator.GELU, schema.BuiltinOperator.BATCH_MATMUL})
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_model(content):
    """The flatbuffer object of a .tflite file, its constant data in its buffers: the LiteRT
    Quantizer stores buffers after the flatbuffer (offset and size), which TensorFlow's
    flatbuffer_utils would drop when it writes the object back."""
    model = compat.tflite_flatbuffer_utils().convert_bytearray_to_object(bytearray(content))
    for buffer in model.buffers or []:
        if (getattr(buffer, "offset", 0) or 0) > 1:  # 1: a placeholder, no data
            buffer.data = np.frombuffer(content, np.uint8, buffer.size, buffer.offset).copy()
            buffer.offset = buffer.size = 0
    return model


def _fuse_activations_into_adds(model, graph):
    schema = compat.tflite_schema()

    fused = {schema.BuiltinOperator.RELU: schema.ActivationFunctionType.RELU,
             schema.BuiltinOperator.RELU6: schema.ActivationFunctionType.RELU6}
    producer = {out: op for op in graph.operators for out in op.outputs}
    for index, op in enumerate(graph.operators):
        code = model.operatorCodes[op.opcodeIndex].builtinCode
        add = producer.get(op.inputs[0])
        if (code not in fused or add is None
                or graph.tensors[op.inputs[0]].type != schema.TensorType.INT8
                or model.operatorCodes[add.opcodeIndex].builtinCode != schema.BuiltinOperator.ADD
                or add.builtinOptions.fusedActivationFunction
                != schema.ActivationFunctionType.NONE):
            continue
        replacement = copy.deepcopy(add)
        replacement.builtinOptions.fusedActivationFunction = fused[code]
        replacement.outputs = list(op.outputs)
        graph.operators[index] = replacement


def _in_float(model, graph, builtins):
    """Each int8 op of the kinds `builtins` becomes DEQUANTIZE (of each input) -> the op in
    float32 -> QUANTIZE (to its int8 output)."""
    schema = compat.tflite_schema()

    def float_copy(tensor):
        return _tensor_like(graph, tensor, graph.tensors[tensor].name + b"_float",
                            schema.TensorType.FLOAT32)

    for op in list(graph.operators):
        if (model.operatorCodes[op.opcodeIndex].builtinCode not in builtins
                or graph.tensors[op.outputs[0]].type != schema.TensorType.INT8):
            continue
        inputs = [float_copy(tensor) for tensor in op.inputs]
        output = float_copy(op.outputs[0])
        before = [_conversion(model, schema.BuiltinOperator.DEQUANTIZE, source, target)
                  for source, target in zip(op.inputs, inputs)]
        after = _conversion(model, schema.BuiltinOperator.QUANTIZE, output, op.outputs[0])
        op.inputs, op.outputs = inputs, [output]
        index = graph.operators.index(op)
        graph.operators[index:index + 1] = [*before, op, after]


def _tensor_like(graph, like, name, kind):
    """A new tensor of `graph` shaped as tensor `like`, named `name`, of type `kind`, not
    quantized; returns its index."""
    tensor = copy.deepcopy(graph.tensors[like])
    tensor.name, tensor.type, tensor.quantization = name, kind, None
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _conversion(model, builtin, source, target):
    """A one-input op (DEQUANTIZE, QUANTIZE) from tensor `source` to tensor `target`."""
    op = compat.tflite_schema().OperatorT()
    op.opcodeIndex = _opcode_index(model, builtin)
    op.inputs, op.outputs = [source], [target]
    return op


def _opcode_index(model, builtin):
    schema = compat.tflite_schema()

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

    with console.quiet_native():
        interpreter = Interpreter(model_content=bytes(content), num_threads=1)
        interpreter.allocate_tensors()
    nodes = compat.ops_details(interpreter)
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


# XNNPACK builds an int8 convolution or fully connected operator only if its requantization
# scale, input scale x kernel scale / output scale (each output channel's), is below 256
# (XNNPACK's convolution and fully-connected operator constructors refuse larger ones). The
# delegate does not check it when it takes the op, so the file fails when LiteRT prepares it:
# "failed to create XNNPACK runtime", or, seen with LiteRT 2.3.0 on an int8 MobileNetV2,
# "double free or corruption" and the process aborted (tests/tflite/test_xnnpack_limits.py).
REQUANTIZATION_LIMIT = 256.0
_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


@dataclasses.dataclass(frozen=True)
class Overflow:
    """An int8 op XNNPACK cannot build: its kind, its output tensor (named after the Keras
    layers fused into it) and its largest requantization scale."""

    op: str
    tensor: str
    scale: float


def requantization_overflows(content):
    """The int8 ops of a .tflite file whose requantization scale is `REQUANTIZATION_LIMIT` or
    more (see there), in graph order. Reads the flatbuffer only; nothing runs."""
    from ai_edge_litert import schema_py_generated as schema

    kinds = {getattr(schema.BuiltinOperator, name): name for name in _WEIGHTED}
    model = schema.Model.GetRootAs(bytes(content), 0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(),
                 model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    found = []
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            kind = kinds.get(codes[op.OpcodeIndex()])
            if kind is None:
                continue
            # TRANSPOSE_CONV takes (output shape, kernel, input); the others (input, kernel).
            data, kernel = (2, 1) if kind == "TRANSPOSE_CONV" else (0, 1)
            tensors = [graph.Tensors(op.Inputs(data)), graph.Tensors(op.Inputs(kernel)),
                       graph.Tensors(op.Outputs(0))]
            if any(t.Type() != schema.TensorType.INT8 for t in tensors):
                continue
            scales = [_scales(t) for t in tensors]
            if any(s is None for s in scales):
                continue
            ratio = float(np.max(scales[0][0] * scales[1] / scales[2][0]))
            if ratio >= REQUANTIZATION_LIMIT:
                found.append(Overflow(kind, tensors[2].Name().decode(), ratio))
    return found


def _scales(tensor):
    quantization = tensor.Quantization()
    if quantization is None or quantization.ScaleLength() == 0:
        return None
    return quantization.ScaleAsNumpy().astype(np.float64)
