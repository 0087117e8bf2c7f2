"""The evaluation stage: scores a model (Keras 3, a QAT run's tf_keras `.h5`, or a `.tflite`
file in LiteRT) on the evaluation split, with the task's metrics."""

import logging
import pathlib

import numpy as np

from mobilenets import artifacts, files, inference, tasks
from mobilenets import data as data_lib
from mobilenets.data import pipeline
from mobilenets.errors import UserError
from mobilenets.tflite.runner import DEFAULT_API, TFLiteModel, check_tflite_path

log = logging.getLogger("mobilenets")

SUFFIXES = (*artifacts.KERAS_SUFFIXES, ".tflite")


def score_model(model, task, split, class_names, data_config, batch_size=64):
    """(metrics, examples) of a Keras model on `split` with the evaluation preprocessing;
    `examples` (images, outputs, truths) of the first batch are for the task's plots."""
    dataset = pipeline.eval_dataset(split, data_config, tuple(model.input_shape[1:]),
                                    task.examples(model, len(class_names)), batch_size,
                                    truth=True)
    predict = task.predictions(model)
    outputs, truths = inference.keras_outputs(predict, dataset)
    return task.scores(outputs, truths, class_names), first_examples(predict, dataset)


def first_examples(predict, dataset):
    """(images, outputs, truths) of the first batch of `dataset`."""
    images, truths = next(iter(dataset))
    return images.numpy(), predict(images), truths.numpy()


def evaluate(config, model_path, threads=1, api=DEFAULT_API):
    """Scores the model file at `model_path` (`.keras`, QAT `.h5` or `.tflite`) on the
    evaluation split and writes `<model>.eval.json` (and the task's plots) beside it.
    Returns the metrics."""
    task = tasks.get(config.task)
    path = pathlib.Path(model_path)
    if path.suffix not in SUFFIXES:
        raise UserError(f"--model {path}: expected a .keras, .tflite or QAT .h5 file")
    if path.suffix == ".tflite":
        check_tflite_path(path)
        runner = TFLiteModel(path, threads, api=api)
        input_shape, output_shape = runner.input["shape"], runner.output_shape
    else:
        model = artifacts.load_model(path)
        input_shape, output_shape = model.input_shape, model.output_shape
    # A model of another shape is refused by check_model, after the data gives class names.
    data = data_lib.load(config.data, seed=config.train.seed, splits=("eval",),
                         channels=1 if input_shape[-1] == 1 else 3, labels=task.labels)
    problem = task.check_model(input_shape, output_shape, data.class_names)
    if problem:
        raise UserError(f"--model {path} {problem}")
    shape = tuple(int(d) for d in input_shape[1:])
    dataset = pipeline.eval_dataset(data.eval, config.data, shape, task.examples(
        None if path.suffix == ".tflite" else model, len(data.class_names)), 64, truth=True)
    if path.suffix == ".tflite":
        def predict(images):
            return task.file_outputs(runner(np.asarray(images)))
        metrics = task.scores(*inference.tflite_outputs(runner, dataset, task.file_outputs),
                              data.class_names)
        metrics["median_latency_ms"] = runner.median_latency_ms
    else:
        predict = task.predictions(model)
        metrics = task.scores(*inference.keras_outputs(predict, dataset), data.class_names)
    metrics["model"] = str(path)
    files.write_json(path.with_name(path.name + ".eval.json"), metrics)
    task.plot(metrics, data.class_names, path.with_name(path.name),
              first_examples(predict, dataset))
    log.info("%s: %s on %d images%s", path, task.summary(metrics), metrics["images"],
             f", median latency {metrics['median_latency_ms']:.2f} ms"
             if metrics.get("median_latency_ms") else "")
    return metrics
