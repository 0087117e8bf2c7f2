"""`mobilenets benchmark`: the latency of a model on this CPU in LiteRT (batch 1, median and 90th
percentile of timed runs) and how much of it XNNPACK runs."""

import pathlib

import numpy as np

from mobilenets import artifacts
from mobilenets.errors import UserError
from mobilenets.export.convert import export_tflite
from mobilenets.models.profile import profile
from mobilenets.models.registry import build_model, list_models
from mobilenets.tflite import xnnpack
from mobilenets.tflite.runner import DEFAULT_API, TFLiteModel, check_tflite_path


def time_file(content, runs, threads, api=DEFAULT_API):
    """{"median_ms", "p90_ms", "partitions", "ops_outside_xnnpack", "size_mb"} of .tflite
    bytes, timed on random pixels after one warm-up run."""
    runner = TFLiteModel(content, threads, api=api)
    shape = tuple(int(d) for d in runner.input["shape"][1:])
    image = np.random.default_rng(0).uniform(0, 255, (1, *shape)).astype(np.float32)
    runner.predict_one(image)
    runner.latencies.clear()
    for _ in range(runs):
        runner.predict_one(image)
    partitions, outside = xnnpack.delegate_partitions(content)
    return {"median_ms": round(runner.median_latency_ms, 3),
            "p90_ms": round(1000 * float(np.percentile(runner.latencies, 90)), 3),
            "partitions": partitions, "ops_outside_xnnpack": outside,
            "size_mb": round(len(content) / 2**20, 3)}


def set_batch_norm_statistics(model, size):
    """Gives BatchNorm the moving statistics of random pixels, as training would give it real
    ones: at their initial identity, an untrained MobileNetV3's int8 hard-swish ADDs get scale
    ratios XNNPACK refuses, which trained models do not have."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    pixels = np.random.default_rng(1).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    model(pixels, training=True)


def run(model, input_size=224, runs=30, threads=1, api=DEFAULT_API):
    """Rows of figures for `model`: a .tflite file, a .keras file (converted to float32 and
    int8 here, calibrated on random pixels: weights do not change the latency), or a model
    name built with random weights at `input_size` (BatchNorm statistics of random pixels)."""
    path = pathlib.Path(model)
    if path.suffix == ".tflite":
        check_tflite_path(path)
        return [{"model": str(path), **time_file(path.read_bytes(), runs, threads, api)}]
    if path.suffix in artifacts.KERAS_SUFFIXES:
        keras_model = artifacts.load_model(path)
        name = str(path)
    elif model in list_models():
        try:
            keras_model = build_model(model, input_shape=(input_size, input_size, 3),
                                      include_preprocessing=True)
        except ValueError as error:
            raise UserError(f"{model}: {error}") from None
        name = model
        set_batch_norm_statistics(keras_model, input_size)
    else:
        raise UserError(f"{model}: not a .tflite or .keras file, nor a model name "
                        f"({', '.join(list_models())})")
    counts = profile(keras_model)
    shape = tuple(keras_model.input_shape[1:])
    pixels = np.random.default_rng(0).uniform(0, 255, (16, *shape)).astype(np.float32)
    calibration = lambda: ([image[None]] for image in pixels)  # noqa: E731
    rows = []
    for mode in ("float32", "int8"):
        content = export_tflite(keras_model, mode, calibration if mode == "int8" else None)
        rows.append({"model": name, "mode": mode, "input": "x".join(map(str, shape)),
                     "params": counts["params"], "macs": counts["macs"],
                     **time_file(content, runs, threads, api)})
    return rows
