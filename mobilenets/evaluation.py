"""Scoring a Keras model or a .tflite file on the evaluation split; plots."""

import csv
import pathlib
import statistics
import time

import numpy as np

from mobilenets.errors import UserError


def scores(probabilities, labels, class_names):
    """Top-1, top-5, loss, per-class accuracy and confusion matrix of predictions."""
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels, np.int64)
    predicted = probabilities.argmax(axis=1)
    k = min(5, probabilities.shape[1])
    top5 = (np.argsort(-probabilities, axis=1)[:, :k] == labels[:, None]).any(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    confusion = np.zeros((len(class_names), len(class_names)), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                 for i, name in enumerate(class_names)}
    return {
        "top1": float((predicted == labels).mean()),
        "top5": float(top5.mean()),
        "loss": float(-np.log(np.clip(picked, 1e-7, 1.0)).mean()),
        "images": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def keras_predictions(model, dataset):
    """(probabilities, labels) of a Keras model over a batched (images, one-hot) dataset.

    The model is called directly, not through `predict`, which under a multi-worker strategy
    is a collective step that every worker would have to join.
    """
    import tensorflow as tf

    predict = tf.function(lambda images: model(images, training=False), reduce_retracing=True)
    outputs, labels = [], []
    for images, one_hot in dataset:
        outputs.append(np.asarray(predict(images)))
        labels.append(np.argmax(one_hot, axis=1))
    return np.concatenate(outputs), np.concatenate(labels)


def evaluate_keras(model, dataset, class_names):
    probabilities, labels = keras_predictions(model, dataset)
    return scores(probabilities, labels, class_names)


class TFLiteModel:
    """A .tflite file in the LiteRT interpreter, called on float pixel batches.

    Inputs are quantized and outputs dequantized with the file's own parameters, one image
    at a time (exported files have a static batch of 1).
    """

    def __init__(self, model, threads=1):
        from ai_edge_litert.interpreter import Interpreter

        try:
            if isinstance(model, (bytes, bytearray)):
                self.interpreter = Interpreter(model_content=bytes(model), num_threads=threads)
            else:
                self.interpreter = Interpreter(model_path=str(model), num_threads=threads)
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


def tflite_predictions(runner, dataset):
    """(probabilities, labels) of a `TFLiteModel` over a batched (images, one-hot) dataset."""
    outputs, labels = [], []
    for images, one_hot in dataset:
        outputs.append(runner(np.asarray(images)))
        labels.append(np.argmax(one_hot, axis=1))
    return np.concatenate(outputs), np.concatenate(labels)


def evaluate_tflite(model, dataset, class_names, threads=1):
    """Scores a .tflite file (path or bytes) over a batched (images, one-hot) dataset."""
    runner = TFLiteModel(model, threads)
    result = scores(*tflite_predictions(runner, dataset), class_names)
    result["median_latency_ms"] = runner.median_latency_ms
    return result


def plot_history(history_csv, png):
    """Plots loss and accuracy per epoch from Keras' CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not pathlib.Path(history_csv).is_file():
        return
    with open(history_csv) as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "evaluation")):
            if key in rows[0]:
                axis.plot(epochs, [float(r[key]) for r in rows], marker="o", label=label)
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)


def plot_confusion(confusion, class_names, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    size = max(4, 0.5 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(confusion, cmap="Blues")
    if len(class_names) <= 30:
        axis.set_xticks(range(len(class_names)), class_names, rotation=90)
        axis.set_yticks(range(len(class_names)), class_names)
        for (i, j), value in np.ndenumerate(confusion):
            axis.text(j, i, str(value), ha="center", va="center", fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)
