"""The `serving_default` SignatureDef of a .tflite file, with named input and output tensors.

An Android app that calls `Interpreter.runSignature` (or LiteRT's signature runner) finds a
model's tensors by these names. TensorFlow's converter writes no signature for a model converted
from concrete functions, and the int8 edits of `tflite.xnnpack` replace the input tensor, so the
signature is written last, over the file as it will ship.
"""

from mobilenets import compat

SIGNATURE_KEY = "serving_default"


def add_signature(content, inputs, outputs):
    """`content` with its graph's input and output tensors renamed to `inputs` and `outputs`
    (lists of names, in the graph's order) and a `serving_default` signature mapping them."""
    schema = compat.tflite_schema()
    flatbuffer_utils = compat.tflite_flatbuffer_utils()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    if len(inputs) != len(graph.inputs) or len(outputs) != len(graph.outputs):
        raise ValueError(f"the graph has {len(graph.inputs)} input(s) and {len(graph.outputs)} "
                         f"output(s), not {len(inputs)} and {len(outputs)}")

    def tensor_maps(names, indices):
        maps = []
        for name, index in zip(names, indices):
            graph.tensors[index].name = name.encode()
            entry = schema.TensorMapT()
            entry.name, entry.tensorIndex = name.encode(), index
            maps.append(entry)
        return maps

    signature = schema.SignatureDefT()
    signature.signatureKey = SIGNATURE_KEY.encode()
    signature.subgraphIndex = 0
    signature.inputs = tensor_maps(inputs, graph.inputs)
    signature.outputs = tensor_maps(outputs, graph.outputs)
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
