"""Semantic segmentation as a task: a DeepLabv3 or LR-ASPP head on the configured backbone,
masks moved with their images, per-pixel cross-entropy over the labelled pixels, mIoU of the
predicted masks, and files whose per-pixel class probabilities MediaPipe Tasks' ImageSegmenter
reads (image-segmenter metadata)."""

import io
import pathlib

import numpy as np
import tensorflow as tf

from mobilenets.data import mask_transforms
from mobilenets.data.pipeline import Examples, resized_whole
from mobilenets.tasks.base import Task
from mobilenets.tasks.classification import family_options
from mobilenets.tasks.segmentation import evaluation, heads, losses
from mobilenets.tasks.segmentation.settings import SegmentationConfig

# The layer each head's backbone part ends before (what a classifier's weights load into).
HEAD_STARTS = {"deeplab_v3": "aspp_1x1_conv", "lraspp": "lraspp_project_conv"}


class Segmentation(Task):
    """Semantic segmentation (the members' contract: `tasks.base.Task`)."""

    name = "segmentation"
    labels = "masks"
    sources = ("scenes", "masks", "tfds")
    headline = "miou"  # what export compares files by, in points
    report_keys = ("miou", "pixel_accuracy")
    result_key = "classes"
    Config = SegmentationConfig

    def build_model(self, model_config, num_classes):
        """The configured head on the configured backbone: per-pixel class logits at the input
        size, taking [0, 255] pixels. Raises ValueError for a bad model option."""
        if model_config.dropout is not None:
            raise ValueError("dropout: the segmentation heads have no classifier to drop out "
                             "before")
        options = dict(alpha=model_config.alpha, input_shape=tuple(model_config.input_shape),
                       padding=model_config.padding, **family_options(model_config))
        if self.config.head == "lraspp":  # at output stride 16 (the config refuses others)
            return heads.lraspp(model_config.name, num_classes, **options)
        return heads.deeplab_v3(model_config.name, num_classes,
                                output_stride=self.config.output_stride, aspp=self.config.aspp,
                                **options)

    def pretrained_part(self, model):
        """What `model.weights` (a classifier's) load into: the backbone, up to the map the
        head starts from."""
        import keras

        start = model.get_layer(HEAD_STARTS[self.config.head])
        return keras.Model(model.input, start.input, name=f"{model.name}_backbone")

    def examples(self, model, num_classes):
        """Training: the image and its mask scaled, cropped and flipped together
        (`mask_transforms.augment`); evaluation and scores: the whole image resized to the
        input, its mask by nearest neighbour."""
        del model, num_classes

        def augment(image, mask, seed, shape, config, ops):
            del ops  # RandAugment is refused for segmentation (config)
            return mask_transforms.augment(image, mask, seed, shape, config)

        return Examples(target=as_target, truth=as_truth, augment=augment,
                        evaluation=resized_whole, label_at_input=mask_transforms.resize_mask)

    def loss(self, api, train_config):
        del api, train_config  # a plain function: Keras 3 and tf_keras take it alike
        return losses.keras_loss()

    def metrics(self, api):
        return [losses.pixel_accuracy]

    def predictions(self, model):
        """A function images -> masks: each pixel's most likely class, uint8 [B, H, W]."""
        @tf.function(reduce_retracing=True)
        def predict(images):
            return tf.cast(tf.argmax(model(images, training=False), axis=-1), tf.uint8)
        return predict

    def file_outputs(self, outputs):
        """A file's batch of class probabilities as masks, the form `predictions` gives."""
        return np.asarray(outputs).argmax(axis=-1).astype(np.uint8)

    def scores(self, outputs, truths, class_names):
        """mIoU, per-class IoU and pixel accuracy (`evaluation.scores`) of predicted masks
        `outputs` against `truths` ([images, H, W], 255 unlabelled)."""
        matrix = evaluation.confusion(truths, outputs, len(class_names))
        result = evaluation.scores(matrix, class_names)
        result.update(images=len(truths))
        return result

    def summary(self, metrics):
        return f"mIoU {metrics['miou']:.4f}, pixel accuracy {metrics['pixel_accuracy']:.4f}"

    def agreement(self, outputs, reference_outputs):
        """The fraction of pixels on which two models' masks agree."""
        return float((np.asarray(outputs) == np.asarray(reference_outputs)).mean())

    def plot(self, metrics, class_names, path_prefix, examples=None):
        """Writes `<path_prefix>.masks.png`: a few images beside their true and predicted masks,
        given `examples` (images, outputs, truths)."""
        if examples is not None:
            plot_masks(*examples, class_names, f"{path_prefix}.masks.png")

    def check_model(self, input_shape, output_shape, class_names):
        """An error message if a model's shapes do not fit this task and data, else None. A
        segmenter maps RGB images to per-pixel class scores of the input's size (a Keras
        model's logits, a file's probabilities)."""
        if len(input_shape) != 4 or input_shape[-1] != 3:
            return f"takes inputs of shape {tuple(input_shape)}; expected RGB images"
        if (not isinstance(output_shape, (tuple, list)) or len(output_shape) != 4
                or tuple(output_shape[1:3]) != tuple(input_shape[1:3])):
            return (f"outputs shape {tuple(output_shape)}, not per-pixel class scores of the "
                    f"input's {input_shape[1]}x{input_shape[2]} pixels")
        if output_shape[-1] != len(class_names):
            return (f"segments {output_shape[-1]} classes but the data has "
                    f"{len(class_names)}")
        return None

    def metadata(self, content, labels, name, description, version):
        from mobilenets.tflite import metadata

        return metadata.add_segmentation_metadata(content, labels=labels, name=name,
                                                  description=description, version=version,
                                                  author="mobilenets")

    def check_config(self, config):
        problem = super().check_config(config)
        if problem or self.config.head != "lraspp":
            return problem
        if self.config.output_stride != 16:
            return "task.segmentation.output_stride: lraspp works at output stride 16"
        if self.config.aspp:
            return "task.segmentation.aspp: ASPP is an option of deeplab_v3, not lraspp"
        return None

    @classmethod
    def recognizes(cls, input_shape, output_shapes):
        """One output of per-pixel class scores, [batch, height, width, classes]."""
        return (isinstance(output_shapes, list) and len(output_shapes) == 1
                and len(output_shapes[0]) == 4)

    def predict(self, outputs, labels, top, image_path, masks_dir=None):
        """The `top` classes of one image by the share of pixels they take; with `masks_dir`
        its mask of class indices, at the image's size, written there as
        `<image name>.mask.png` ("mask": its path)."""
        from PIL import Image

        from mobilenets import files

        scores = np.asarray(outputs)[0]
        mask = scores.argmax(axis=-1).astype(np.uint8)
        counts = np.bincount(mask.ravel(), minlength=scores.shape[-1])
        order = [int(i) for i in np.argsort(-counts, kind="stable")[:top] if counts[i]]
        result = {"image": str(image_path), "classes": [
            {"label": labels[i] if labels else str(i), "index": i,
             "fraction": round(float(counts[i] / mask.size), 4)} for i in order]}
        if masks_dir:
            with Image.open(image_path) as original:
                size = original.size
            out = pathlib.Path(masks_dir) / f"{pathlib.Path(image_path).name}.mask.png"
            encoded = io.BytesIO()
            Image.fromarray(mask).resize(size, Image.NEAREST).save(encoded, "PNG")
            files.write_bytes(out, encoded.getvalue())
            result["mask"] = str(out)
        return result

    def describe(self, result):
        line = ", ".join(f"{c['label']} {100 * c['fraction']:.1f}% of pixels"
                         for c in result["classes"])
        return line + (f" (mask: {result['mask']})" if "mask" in result else "")

    def served(self, model, api):
        """The model the exported files are converted from: `model` with a softmax over its
        logits, per-pixel class probabilities out (float32), as MediaPipe's confidence
        masks; built in `model`'s library `api` (keras, or tf_keras for a QAT model, whose
        softmax then runs in float on the int8 logits)."""
        probabilities = api.layers.Softmax(name="probabilities", dtype="float32")(model.output)
        return api.Model(model.input, probabilities, name=model.name)


def as_target(mask):
    """What the loss trains against: the mask, int32 [H, W, 1]."""
    return tf.cast(mask, tf.int32)


def as_truth(mask):
    """What the scores compare with: the mask, uint8 [H, W]."""
    return tf.cast(mask[..., 0], tf.uint8)



def plot_masks(images, outputs, truths, class_names, png, count=6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outputs, truths = np.asarray(outputs), np.asarray(truths)
    count = min(count, len(images))
    colours = plt.get_cmap("tab20", max(len(class_names), 2))
    figure, axes = plt.subplots(count, 3, figsize=(7.5, 2.5 * count), squeeze=False)
    for row, (image, truth, predicted) in enumerate(zip(images[:count], truths[:count],
                                                        outputs[:count])):
        axes[row, 0].imshow(np.clip(np.asarray(image), 0, 255).astype(np.uint8))
        for column, mask in ((1, truth), (2, predicted)):
            shown = np.ma.masked_equal(mask.astype(np.int32), losses.IGNORE_INDEX)
            axes[row, column].imshow(shown, cmap=colours, vmin=0,
                                     vmax=max(len(class_names) - 1, 1), interpolation="nearest")
    for axis, title in zip(axes[0], ("image", "true mask", "predicted mask")):
        axis.set_title(title, fontsize=9)
    for axis in axes.flat:
        axis.axis("off")
    present = sorted((set(np.unique(truths[:count])) | set(np.unique(outputs[:count])))
                     - {losses.IGNORE_INDEX})
    figure.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in present],
                  labels=[class_names[i] for i in present], loc="lower center",
                  ncol=min(4, len(present)), fontsize=7)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    figure.savefig(png, dpi=100)
    plt.close(figure)
