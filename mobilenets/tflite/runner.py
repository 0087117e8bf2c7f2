"""A .tflite file in the LiteRT interpreter, called like a Keras model on float pixel batches."""

import pathlib
import statistics
import time

import numpy as np

from mobilenets.errors import UserError


class TFLiteModel:
    """A .tflite file (path or bytes) in the LiteRT interpreter, called on float pixel batches.
    By default LiteRT runs it with XNNPACK; `builtin_kernels` runs TFLite's own kernels.

    Inputs are quantized and outputs dequantized with the file's own parameters, one image
    at a time (exported files have a static batch of 1). A file of several outputs gives a
    tuple of them: a detection file's in TFLite_Detection_PostProcess's order (boxes,
    classes, scores, count), another's in the file's order.
    """

    def __init__(self, model, threads=1, builtin_kernels=False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # builtin_kernels: TFLite's own kernels, without the XNNPACK delegate LiteRT applies
        # by default (what a phone without XNNPACK, or with it disabled, runs).
        resolver = (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin_kernels
                    else OpResolverType.AUTO)
        source = ({"model_content": bytes(model)} if isinstance(model, (bytes, bytearray))
                  else {"model_path": str(model)})
        try:
            self.interpreter = Interpreter(**source, num_threads=threads,
                                           experimental_op_resolver_type=resolver)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise UserError(f"{model if not isinstance(model, bytes) else 'model'} is not a "
                            f"valid TFLite file ({str(error).splitlines()[0]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = output_order(self.interpreter, model)
        self.output = self.outputs[0]
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

    def predict_one(self, image):
        details = self.input
        scale, zero = details["quantization"]
        if np.issubdtype(details["dtype"], np.integer):
            info = np.iinfo(details["dtype"])
            image = np.clip(np.round(image / (scale or 1.0) + zero), info.min, info.max)
        self.interpreter.set_tensor(details["index"], image.astype(details["dtype"]))
        started = time.perf_counter()
        self.interpreter.invoke()
        self.latencies.append(time.perf_counter() - started)
        outputs = []
        for details in self.outputs:
            output = self.interpreter.get_tensor(details["index"])
            scale, zero = details["quantization"]
            if np.issubdtype(output.dtype, np.integer):
                output = (output.astype(np.float32) - zero) * scale
            outputs.append(output)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @property
    def median_latency_ms(self):
        return 1000 * statistics.median(self.latencies) if self.latencies else None


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
