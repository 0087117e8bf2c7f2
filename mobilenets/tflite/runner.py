"""A .tflite file in LiteRT (its CompiledModel API, or the Interpreter), called like a Keras model
on float pixel batches."""

import pathlib
import signal
import statistics
import subprocess
import sys
import time

import numpy as np

from mobilenets import console
from mobilenets.errors import UserError

# LiteRT's two Python APIs: the CompiledModel (what LiteRT asks new code to use; the default
# here: it runs every file the project exports, giving the Interpreter's outputs exactly,
# tests/tflite/test_apis.py) and the Interpreter (in maintenance).
APIS = ("compiled", "interpreter")
DEFAULT_API = "compiled"


class TFLiteModel:
    """A .tflite file (path or bytes) in LiteRT, called on float pixel batches, through its
    CompiledModel API (`api="compiled"`) or its Interpreter. By default LiteRT runs it with
    XNNPACK; `builtin_kernels` runs TFLite's own kernels.

    Inputs are quantized and outputs dequantized with the file's own parameters, one image
    at a time (exported files have a static batch of 1). A file of several outputs gives a
    tuple of them: a detection file's in TFLite_Detection_PostProcess's order (boxes,
    classes, scores, count), another's in the file's order.
    """

    def __init__(self, model, threads=1, builtin_kernels=False, api=DEFAULT_API):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if api not in APIS:
            raise UserError(f"--api: {api!r} is not one of {', '.join(APIS)}")
        # builtin_kernels: TFLite's own kernels, without the XNNPACK delegate LiteRT applies
        # by default (what a phone without XNNPACK, or with it disabled, runs). With the
        # CompiledModel, the Interpreter only describes the file: no delegate needed.
        resolver = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                    if builtin_kernels or api == "compiled" else OpResolverType.AUTO)
        content = (bytes(model) if isinstance(model, (bytes, bytearray))
                   else pathlib.Path(model).read_bytes())
        if not builtin_kernels:  # the file would make LiteRT fail, or abort this process
            check_xnnpack_builds(model)
        try:
            with console.quiet_native():  # "Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(model_content=content, num_threads=threads,
                                               experimental_op_resolver_type=resolver)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise UserError(f"{model if not isinstance(model, bytes) else 'model'} is not a "
                            f"valid TFLite file ({str(error).splitlines()[0]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = output_order(self.interpreter, model)
        self.output = self.outputs[0]
        self.api = api
        self.compiled = (Compiled(content, threads, builtin_kernels, self.interpreter,
                                  self.outputs) if api == "compiled" else None)
        self.latencies = []

    @property
    def output_shape(self):
        """The output's shape, or a list of the outputs' shapes."""
        shapes = [details["shape"].tolist() for details in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def __call__(self, images):
        results = [self.predict_one(image[None]) for image in np.asarray(images)]
        if len(self.outputs) == 1:
            return np.concatenate(results)
        return tuple(np.concatenate(parts) for parts in zip(*results))

    def fed(self, images):
        """Float pixel `images` as the file takes them: quantized with its input's own
        parameters where it takes integers, in its input's dtype."""
        details = self.input
        scale, zero = details["quantization"]
        if np.issubdtype(details["dtype"], np.integer):
            info = np.iinfo(details["dtype"])
            images = np.clip(np.round(images / (scale or 1.0) + zero), info.min, info.max)
        return np.asarray(images).astype(details["dtype"])

    def predict_one(self, image):
        details = self.input
        image = self.fed(image)
        started = time.perf_counter()
        if self.compiled is not None:
            raw = self.compiled.run(image)
        else:
            self.interpreter.set_tensor(details["index"], image)
            self.interpreter.invoke()
            raw = [self.interpreter.get_tensor(d["index"]) for d in self.outputs]
        self.latencies.append(time.perf_counter() - started)
        outputs = []
        for details, output in zip(self.outputs, raw):
            scale, zero = details["quantization"]
            if np.issubdtype(output.dtype, np.integer):
                output = (output.astype(np.float32) - zero) * scale
            outputs.append(output)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @property
    def median_latency_ms(self):
        return 1000 * statistics.median(self.latencies) if self.latencies else None


def litert_runtime(api=DEFAULT_API):
    """What runs the files here: LiteRT's version, the API, and the machine (its kernels differ
    by instruction set: a file's scores on x86 are not quite an ARM phone's)."""
    import platform
    from importlib import metadata

    cpu = platform.processor()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "CPU part")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"litert": metadata.version("ai-edge-litert"), "api": api,
            "machine": platform.machine(), "cpu": cpu}


_ENVIRONMENT = []


def environment():
    """The LiteRT environment every CompiledModel of this process shares (made once: it
    registers LiteRT's accelerators, and says so, each time)."""
    if not _ENVIRONMENT:
        from ai_edge_litert.compiled_model import Environment

        with console.quiet_native():
            _ENVIRONMENT.append(Environment.create())
    return _ENVIRONMENT[0]


class Compiled:
    """A .tflite file in LiteRT's CompiledModel API on the CPU (XNNPACK, or the built-in
    kernels), its outputs in the order of `outputs` (the Interpreter's details of them)."""

    def __init__(self, content, threads, builtin_kernels, interpreter, outputs):
        from ai_edge_litert.compiled_model import (
            CompiledModel,
            CpuKernelMode,
            CpuOptions,
            HardwareAccelerator,
            Options,
        )

        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=threads, kernel_mode=(
                              CpuKernelMode.BUILTIN if builtin_kernels else None)))
        try:
            with console.quiet_native():  # its environment's and accelerators' INFO lines
                self.model = CompiledModel.from_buffer(content, options=options,
                                                       environment=environment())
                self.inputs = self.model.create_input_buffers(0)
                self.buffers = self.model.create_output_buffers(0)
        except (ValueError, RuntimeError) as error:
            raise UserError(f"LiteRT's CompiledModel cannot run the file "
                            f"({str(error).splitlines()[0]}); try --api interpreter") from None
        signature = self.model.get_signature_by_index(0)
        if signature["key"] in interpreter.get_signature_list():  # buffers in its order
            named = interpreter.get_signature_runner(signature["key"]).get_output_details()
            position = {named[name]["index"]: i for i, name in enumerate(signature["outputs"])}
        else:
            position = {d["index"]: i for i, d in enumerate(interpreter.get_output_details())}
        self.order = [(position[d["index"]], int(np.prod(d["shape"])), d["dtype"],
                       tuple(d["shape"])) for d in outputs]
        details = interpreter.get_input_details()[0]
        with console.quiet_native():  # the first run sets LiteRT's CPU accelerator up, loudly
            self.run(np.zeros(details["shape"], details["dtype"]))

    def run(self, image):
        """The outputs for one input array (already of the file's input type)."""
        self.inputs[0].write(np.ascontiguousarray(image))
        self.model.run_by_index(0, self.inputs, self.buffers)
        return [self.buffers[index].read(size, dtype).reshape(shape)
                for index, size, dtype, shape in self.order]


def check_xnnpack_builds(model):
    """UserError if XNNPACK cannot build an int8 op of the file (`model`: path or bytes; see
    `xnnpack.requantization_overflows`)."""
    from mobilenets.tflite import xnnpack

    content = model if isinstance(model, (bytes, bytearray)) else pathlib.Path(model).read_bytes()
    try:
        overflows = xnnpack.requantization_overflows(content)
    except Exception:  # noqa: BLE001 - not a flatbuffer: the interpreter says so
        return
    if overflows:
        first = overflows[0]
        name = "the file" if isinstance(model, (bytes, bytearray)) else str(model)
        raise UserError(
            f"{name}: XNNPACK, LiteRT's default delegate, cannot run its {first.op} "
            f"{first.tensor.split(';')[0]} (int8 requantization scale {first.scale:.0f}; it "
            f"must be below {xnnpack.REQUANTIZATION_LIMIT:.0f}) and LiteRT fails or aborts on "
            "it; export the model again with mobilenets export, which keeps such layers in "
            "float")


def output_order(interpreter, model):
    """The output details, a detection file's in its post-process op's order."""
    from mobilenets.tflite.metadata import DETECTION_ROLES, detection_roles

    details = interpreter.get_output_details()
    if len(details) != len(DETECTION_ROLES):
        return details
    content = model if isinstance(model, (bytes, bytearray)) else pathlib.Path(model).read_bytes()
    try:
        roles = detection_roles(content)
    except ValueError:  # four outputs, but not a detector's
        return details
    return [details[roles.index(role)] for role in DETECTION_ROLES]


def check_tflite_path(path):
    """Raises UserError unless `path` is a readable TFLite flatbuffer; returns it as a Path."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite file (no TFL3 identifier)")
    return path


# Loads a .tflite file and runs it once on zeros, with LiteRT's default delegate (XNNPACK), then
# with its built-in kernels. Run as a child process by `runs_apart`.
_RUN_ONCE = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
for resolver in (OpResolverType.AUTO, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
    interpreter = Interpreter(model_path=sys.argv[1], num_threads=1,
                              experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    for details in interpreter.get_input_details():
        interpreter.set_tensor(details["index"], np.zeros(details["shape"], details["dtype"]))
    interpreter.invoke()
"""


def runs_apart(path, timeout=600):
    """None if LiteRT loads the .tflite file at `path` and runs it once, with XNNPACK and with
    its built-in kernels, in a child process; else what went wrong. A file can make LiteRT
    abort or crash the process that runs it (`xnnpack.requantization_overflows`); here that
    process is not this one."""
    try:
        done = subprocess.run([sys.executable, "-c", _RUN_ONCE, str(path)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"LiteRT did not finish one run in {timeout} s"
    if done.returncode == 0:
        return None
    said = [line for line in done.stderr.splitlines()
            if line.strip() and not line.startswith("INFO:")]
    last = said[-1].strip() if said else "nothing on stderr"
    if done.returncode < 0:
        return f"LiteRT ended the process with {signal.Signals(-done.returncode).name} ({last})"
    return f"LiteRT failed: {last}"
