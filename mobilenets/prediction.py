"""`mobilenets predict`: class probabilities (or a detector's objects, a segmenter's masks)
of image files from a `.keras` or `.tflite` model, each image preprocessed as Android's clients
do (`data.transforms.client_transform`)."""

import io
import pathlib

import numpy as np

from mobilenets import artifacts, files, tasks
from mobilenets.data.transforms import client_transform
from mobilenets.errors import UserError
from mobilenets.tflite import metadata
from mobilenets.tflite.runner import TFLiteModel, check_tflite_path


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


def predict_files(model_path, image_paths, top=3, labels_path=None, masks_dir=None):
    """[{"image", "top": [{"label", "index", "score"}, ...]}] for each image file; for a
    detector, [{"image", "detections": [{"label", "index", "score", "box"}, ...]}], the `top`
    best, boxes as [ymin, xmin, ymax, xmax] fractions of the image; for a segmenter,
    [{"image", "classes": [{"label", "index", "fraction"}, ...]}], the `top` classes covering
    the most pixels, and with `masks_dir` each image's mask of class indices, at the image's
    size, written there as `<image name>.mask.png` ("mask": its path)."""
    path = pathlib.Path(model_path)
    if top < 1:
        raise UserError("--top must be at least 1")
    if path.suffix == ".tflite":
        check_tflite_path(path)
        content = path.read_bytes()
        runner = TFLiteModel(content)
        shape = tuple(int(d) for d in runner.input["shape"][1:])
        detector = len(runner.outputs) == 4  # TFLite_Detection_PostProcess's
        classes = None if detector else int(runner.output["shape"][-1])
        labels = labels_of(path, content, labels_path)
    else:
        model = artifacts.load_model(path)
        shape = tuple(model.input_shape[1:])
        detector = isinstance(model.output, dict)  # SSDLite's boxes and classes
        if detector:
            detect = tasks.get("detection").predictions(model)
            classes = model.output["classes"].shape[-1] - 1  # background first
            runner = lambda batch: [np.asarray(o) for o in detect(batch)]  # noqa: E731
        else:
            classes = model.output_shape[-1]
            runner = lambda batch: np.asarray(model(batch, training=False))  # noqa: E731
        labels = labels_of(path, None, labels_path)
    if labels is not None and classes is not None and len(labels) != classes:
        raise UserError(f"{len(labels)} labels for a model of {classes} classes")
    segmenter = not detector and len(shape) == 3 and len(
        runner.output["shape"] if path.suffix == ".tflite" else model.output_shape) == 4
    if masks_dir and not segmenter:
        raise UserError(f"--masks: {path} is not a segmentation model")
    if masks_dir:
        files.writable_folder(pathlib.Path(masks_dir), "--masks")
    results = []
    for image_path in image_paths:
        image = client_transform(read_image(image_path), shape).numpy()[None]
        if detector:
            results.append({"image": str(image_path),
                            "detections": detections(runner(image), labels, top)})
            continue
        if segmenter:
            results.append(segmented(image_path, np.asarray(runner(image))[0], labels, top,
                                     masks_dir))
            continue
        scores = np.asarray(runner(image))[0]
        order = np.argsort(-scores)[:top]
        results.append({"image": str(image_path), "top": [
            {"label": labels[i] if labels else str(i), "index": int(i),
             "score": float(scores[i])} for i in order]})
    return results


def detections(outputs, labels, top):
    """The `top` best of a detector's outputs (boxes, classes, scores, count) for one image."""
    boxes, classes, scores, count = (np.asarray(o)[0] for o in outputs)
    found = min(int(np.asarray(count).reshape(-1)[0]), top)
    return [{"label": labels[int(classes[i])] if labels else str(int(classes[i])),
             "index": int(classes[i]), "score": float(scores[i]),
             "box": [round(float(v), 4) for v in boxes[i]]} for i in range(found)]


def segmented(image_path, scores, labels, top, masks_dir):
    """A segmenter's result for one image from its per-pixel class `scores` [H, W, classes]:
    the `top` classes by the share of pixels they take, and the mask written to `masks_dir`."""
    from PIL import Image

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
