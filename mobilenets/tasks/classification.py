"""Image classification: the classifier head on a backbone, one-hot targets, cross-entropy,
top-1/top-5 scores with a confusion matrix, and the image-classifier metadata of exported files.
"""

import numpy as np

from mobilenets.models import registry
from mobilenets.models.registry import build_backbone, build_model
from mobilenets.tasks.base import Task


class Classification(Task):
    """Image classification (the members' contract: `tasks.base.Task`)."""

    name = "classification"
    labels = "classes"
    sources = ("sample", "fashion_mnist", "folder", "tfds")
    monitor, monitor_mode = "val_accuracy", "max"  # the Keras log entry of the best model
    headline = "top1"  # what export compares files by, in points
    report_keys = ("top1", "top5")
    result_key = "top"
    export_modes = ("float32", "float16", "dynamic_range", "int8", "int16x8")
    quantization_debugger = True  # export's per-layer error report works for its models
    evaluates_as_clients = False  # data.crop_fraction, data.small_images: pad differ from them
    rgb_only = False  # gray models export to files taking RGB (export.rgb_input)
    unsupported = {}

    def build_model(self, model_config, num_classes):
        """The configured classifier, taking [0, 255] pixels (normalization inside). Raises
        ValueError for a bad model option."""
        options = family_options(model_config)
        if model_config.dropout is not None:
            options["dropout"] = model_config.dropout
        return build_model(model_config.name, alpha=model_config.alpha,
                           input_shape=tuple(model_config.input_shape), num_classes=num_classes,
                           include_preprocessing=True, padding=model_config.padding, **options)

    def examples(self, model, num_classes):
        """`transforms`' preprocessing; labels (int32) as one-hot vectors, for the loss and the
        scores alike."""
        import tensorflow as tf

        from mobilenets.data.pipeline import classifying

        del model
        return classifying(lambda label: tf.one_hot(label, num_classes))

    def loss(self, api, train_config):
        """The loss in `api` (keras or tf_keras): cross-entropy with label smoothing."""
        return api.losses.CategoricalCrossentropy(label_smoothing=train_config.label_smoothing)

    def metrics(self, api):
        return [api.metrics.CategoricalAccuracy(name="accuracy"),
                api.metrics.TopKCategoricalAccuracy(5, name="top5")]

    def predictions(self, model):
        """A function images -> class probabilities."""
        import tensorflow as tf

        return tf.function(lambda images: model(images, training=False), reduce_retracing=True)

    def scores(self, outputs, targets, class_names):
        """Top-1, top-5, loss, per-class accuracy and confusion matrix of class probabilities
        `outputs` against one-hot `targets`."""
        return scores(outputs, np.argmax(targets, axis=1), class_names)

    def summary(self, metrics):
        """One line for the log."""
        return f"top-1 {metrics['top1']:.4f}, top-5 {metrics['top5']:.4f}"

    def agreement(self, outputs, reference_outputs):
        """The fraction of images on which two models' top-1 classes agree."""
        return float((np.argmax(outputs, 1) == np.argmax(reference_outputs, 1)).mean())

    def plot(self, metrics, class_names, path_prefix, examples=None):
        """Writes `<path_prefix>.confusion.png`."""
        plot_confusion(metrics["confusion_matrix"], class_names,
                       f"{path_prefix}.confusion.png")

    def check_model(self, input_shape, output_shape, class_names):
        """An error message if a model's shapes do not fit this task and data, else None."""
        if len(input_shape) != 4 or None in tuple(input_shape[1:]):
            return (f"takes inputs of shape {tuple(input_shape)}; expected images of a fixed "
                    "size (batch, height, width, channels)")
        if input_shape[-1] not in (1, 3):
            return f"takes {input_shape[-1]}-channel images; expected 1 (gray) or 3 (RGB)"
        if (not isinstance(output_shape, (tuple, list)) or len(output_shape) != 2
                or not all(d is None or isinstance(d, (int, np.integer)) for d in output_shape)):
            return f"outputs shape {tuple(output_shape)}, not class probabilities"
        if output_shape[-1] != len(class_names):
            return (f"predicts {output_shape[-1]} classes but the data has "
                    f"{len(class_names)}")
        return None

    def metadata(self, content, labels, name, description, version):
        """`content` (.tflite bytes) with image-classifier metadata and the labels packed in."""
        from mobilenets.tflite import metadata

        return metadata.add_metadata(content, labels=labels, name=name, description=description,
                                     version=version, author="mobilenets")

    @classmethod
    def recognizes(cls, input_shape, output_shapes):
        """One output of class scores, [batch, classes]."""
        return (isinstance(output_shapes, list) and len(output_shapes) == 1
                and len(output_shapes[0]) == 2)

    def predict(self, outputs, labels, top, image_path, masks_dir=None):
        """The `top` classes of one image, most likely first."""
        scores = np.asarray(outputs)[0]
        order = np.argsort(-scores)[:top]
        return {"image": str(image_path), "top": [
            {"label": labels[i] if labels else str(i), "index": int(i),
             "score": float(scores[i])} for i in order]}

    def describe(self, result):
        return ", ".join(f"{p['label']} {p['score']:.3f}" for p in result["top"])


def backbone_layers(model_config):
    """The names of the configured model's layers that belong to its backbone (all but the
    task's head): what fine-tuning freezes and trains at a lower rate."""
    backbone = build_backbone(model_config.name, alpha=model_config.alpha,
                              input_shape=tuple(model_config.input_shape),
                              include_preprocessing=True, padding=model_config.padding,
                              **family_options(model_config))
    return {layer.name for layer in backbone.layers}


def family_options(model_config):
    """`model.options` with `model.drop_path` added when it is set; ValueError naming the
    families that have it when the configured one does not."""
    options = dict(model_config.options)
    if model_config.drop_path:
        if "drop_path" not in registry.family_options(model_config.name):
            able = [n for n in registry.list_models() if "drop_path" in registry.family_options(n)]
            raise ValueError(f"drop_path: {model_config.name} has no residual blocks to skip; "
                             f"the families with drop path: {', '.join(able)}")
        options["drop_path"] = model_config.drop_path
    return options


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
