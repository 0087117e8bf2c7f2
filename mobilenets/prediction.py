"""`mobilenets predict`: class probabilities (or a detector's objects, a segmenter's masks)
of image files from a `.keras` or `.tflite` model, each image preprocessed as Android's clients
do (`data.transforms.client_transform`)."""

import pathlib

import numpy as np

from mobilenets import artifacts, files, tasks
from mobilenets.data.transforms import client_transform
from mobilenets.errors import UserError
from mobilenets.tflite import metadata
from mobilenets.tflite.runner import DEFAULT_API, TFLiteModel, check_tflite_path


def read_image(path):
    """The image file at `path` as a uint8 RGB array (any format Pillow reads: PNG, JPEG, GIF,
    BMP, WebP, TIFF; gray, palette, alpha and CMYK converted to RGB)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"{path}: cannot read it as an image ({error})") from None


def labels_of(model_path, content=None, labels_path=None):
    """Class names: from `labels_path`, the labels packed in a .tflite file's metadata, or the
    labels.txt beside the model (a run directory's); None if there are none."""
    if labels_path:
        path = pathlib.Path(labels_path)
        if not path.is_file():
            raise UserError(f"--labels {path} not found")
        return [line for line in path.read_text().splitlines() if line.strip()]
    if content is not None:
        packed = (metadata.read_metadata(content) or {}).get("files", {})
        if "labels.txt" in packed:
            return [line for line in packed["labels.txt"].splitlines() if line.strip()]
    beside = pathlib.Path(model_path).with_name("labels.txt")
    if beside.is_file():
        return [line for line in beside.read_text().splitlines() if line.strip()]
    return None


def predict_files(model_path, image_paths, top=3, labels_path=None, masks_dir=None,
                  api=DEFAULT_API):
    """Each image file's result, by the task whose model it is (`tasks.recognize`, from the
    model's shapes; its `Task.predict` makes the result): {"image", "top": [{"label", "index",
    "score"}, ...]} of a classifier; {"image", "detections": [{"label", "index", "score",
    "box"}, ...]} of a detector, the `top` best, boxes as [ymin, xmin, ymax, xmax] fractions of
    the image; {"image", "classes": [{"label", "index", "fraction"}, ...]} of a segmenter, the
    `top` classes covering the most pixels, and with `masks_dir` each image's mask of class
    indices, at the image's size, written there as `<image name>.mask.png` ("mask": its
    path)."""
    path = pathlib.Path(model_path)
    if top < 1:
        raise UserError("--top must be at least 1")
    if path.suffix == ".tflite":
        check_tflite_path(path)
        content = path.read_bytes()
        run = TFLiteModel(content, api=api)
        input_shape = [int(d) for d in run.input["shape"]]
        output_shapes = [[int(d) for d in o["shape"]] for o in run.outputs]
        labels = labels_of(path, content, labels_path)
    else:
        model = artifacts.load_model(path)
        input_shape = list(model.input_shape)
        output_shapes = ({name: list(t.shape) for name, t in model.output.items()}
                         if isinstance(model.output, dict)
                         else [list(t.shape) for t in model.outputs])
        labels = labels_of(path, None, labels_path)
    task = tasks.recognize(input_shape, output_shapes)
    if task is None:
        raise UserError(f"{path}: its outputs {output_shapes} are no task's this knows "
                        f"({', '.join(tasks.TASKS)})")
    if path.suffix != ".tflite":
        run = task.keras_runner(model)
    classes = task.classes_of(output_shapes)
    if labels is not None and classes is not None and len(labels) != classes:
        raise UserError(f"{len(labels)} labels for a model of {classes} classes")
    if masks_dir and task.result_key != "classes":
        raise UserError(f"--masks: {path} is not a segmentation model")
    if masks_dir:
        files.writable_folder(pathlib.Path(masks_dir), "--masks")
    shape = tuple(input_shape[1:])
    return [task.predict(run(client_transform(read_image(image_path), shape).numpy()[None]),
                         labels, top, image_path, masks_dir) for image_path in image_paths]
