"""Runs a .tflite file on prepared inputs with LiteRT and saves its raw outputs: the half of
`scripts/arm64_verify.py` that runs on both machines, the x86 host and the aarch64 root
filesystem under emulation, so that the two runs differ only in the machine.

    python arm64_runner.py FOLDER

FOLDER holds `model.tflite` and `inputs.npy` (the file's input dtype, one row per image, as
`TFLiteModel.fed` gives them); it gets `outputs_xnnpack.npy` and
`outputs_builtin.npy` (each output's raw values, one row per image; several outputs are
flattened and joined) and `runtime.json` (LiteRT's version, the machine, the XNNPACK
partitions it made: 0 where XNNPACK was silently not applied). It needs only numpy and
ai-edge-litert: the emulated root has no TensorFlow.
"""

import json
import pathlib
import platform
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType


def run(content, inputs, resolver):
    interpreter = Interpreter(model_content=content, num_threads=1,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    source = interpreter.get_input_details()[0]["index"]
    outputs = sorted(interpreter.get_output_details(), key=lambda d: d["index"])
    rows = []
    for image in inputs:
        interpreter.set_tensor(source, image[None])
        interpreter.invoke()
        rows.append(np.concatenate([interpreter.get_tensor(d["index"]).reshape(-1)
                                    for d in outputs]))
    # The XNNPACK partitions LiteRT made: DELEGATE nodes in the execution plan (a private
    # method, as mobilenets.compat.ops_details; this file cannot import the package).
    partitions = sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    return np.stack(rows), partitions


def main():
    folder = pathlib.Path(sys.argv[1])
    content = (folder / "model.tflite").read_bytes()
    inputs = np.load(folder / "inputs.npy")
    xnnpack, partitions = run(content, inputs, OpResolverType.AUTO)
    builtin, _ = run(content, inputs, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    np.save(folder / "outputs_xnnpack.npy", xnnpack)
    np.save(folder / "outputs_builtin.npy", builtin)
    from importlib import metadata

    (folder / "runtime.json").write_text(json.dumps({
        "machine": platform.machine(), "litert": metadata.version("ai-edge-litert"),
        "xnnpack_partitions": int(partitions)}))


if __name__ == "__main__":
    main()
