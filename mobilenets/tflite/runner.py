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
    at a time (exported files have a static batch of 1).
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
        self.output = self.interpreter.get_output_details()[0]
        self.latencies = []

    def __call__(self, images):
        return np.concatenate([self.predict_one(image[None]) for image in np.asarray(images)])

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
        output = self.interpreter.get_tensor(self.output["index"])
        scale, zero = self.output["quantization"]
        if np.issubdtype(output.dtype, np.integer):
            output = (output.astype(np.float32) - zero) * scale
        return output

    @property
    def median_latency_ms(self):
        return 1000 * statistics.median(self.latencies) if self.latencies else None


def check_tflite_path(path):
    """Raises UserError unless `path` is a readable TFLite flatbuffer; returns it as a Path."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise UserError(f"{path} is not a TFLite file (no TFL3 identifier)")
    return path
