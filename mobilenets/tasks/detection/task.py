"""Object detection as a task: SSDLite on the configured backbone, anchors matched to objects
as targets, SSD's loss, COCO mAP of the detections, and files ending in
TFLite_Detection_PostProcess with object-detector metadata."""

import numpy as np
import tensorflow as tf

from mobilenets.data import box_transforms
from mobilenets.data.pipeline import Examples, resized_whole
from mobilenets.tasks.base import NO_RESULT, Task
from mobilenets.tasks.classification import family_options
from mobilenets.tasks.detection import anchors as anchor_lib
from mobilenets.tasks.detection import export, losses, postprocess, ssdlite, targets
from mobilenets.tasks.detection.evaluation import coco_map
from mobilenets.tasks.detection.settings import DetectionConfig

# COCO's metrics take boxes in pixels: detections and truths are fractions of the image, scored
# on images of this nominal size (mAP does not depend on it; only COCO's small / medium /
# large split would, which is not reported).
NOMINAL_SIZE = 1000
# agreement: a reference detection this confident must be found again, same class, at this
# IoU, at least this confident.
AGREEMENT_SCORE, AGREEMENT_IOU, AGREEMENT_FOUND = 0.5, 0.5, 0.25


class Detection(Task):
    """Object detection (the members' contract: `tasks.base.Task`)."""

    name = "detection"
    labels = "objects"
    sources = ("scenes", "coco", "tfds")
    headline = "map50"  # what export compares files by, in points
    report_keys = ("map", "map50", "map75")
    result_key = "detections"
    Config = DetectionConfig

    def build_model(self, model_config, num_classes):
        """SSDLite on the configured backbone, taking [0, 255] pixels. Raises ValueError for
        a bad model option."""
        if model_config.dropout is not None:
            raise ValueError("dropout: SSDLite has no classifier to drop out before")
        return ssdlite.build(model_config.name, num_classes,
                             input_shape=tuple(model_config.input_shape),
                             alpha=model_config.alpha, padding=model_config.padding,
                             **family_options(model_config))

    def examples(self, model, num_classes):
        """Training: SSD's box-aware augmentation, each image's objects matched to the
        anchors of `model` (`targets.assign`; without a model, no targets); scores: the whole
        image resized, its objects as truth."""
        del num_classes
        anchors = None if model is None else tf.constant(
            anchor_lib.generate(ssdlite.grid_sizes(model)))
        threshold = self.config.match_threshold

        def target(objects):
            valid = objects[:, 4] >= 0
            classes, codes = targets.assign(tf.boolean_mask(objects[:, :4], valid),
                                            tf.boolean_mask(objects[:, 4], valid), anchors,
                                            threshold)
            matched = tf.cast(classes > 0, tf.float32)[:, None]
            return {"boxes": tf.concat([codes, matched], axis=1), "classes": classes}

        def augment(image, objects, seed, shape, config, ops):
            del ops  # RandAugment is refused for detection (config)
            return box_transforms.augment(image, objects, seed, shape, config)

        return Examples(target=target, truth=objects_as_they_are, augment=augment,
                        evaluation=resized_whole)

    def loss(self, api, train_config):
        del api, train_config  # plain functions: Keras 3 and tf_keras take them alike
        return losses.keras_losses(focal=self.config.focal_loss)

    def predictions(self, model):
        """A function images -> (boxes, classes, scores, count): the model's detections, in the
        order and form of the exported file's outputs (TFLite_Detection_PostProcess's)."""
        anchors = tf.constant(anchor_lib.generate(ssdlite.grid_sizes(model)))

        @tf.function(reduce_retracing=True)
        def predict(images):
            outputs = model(images, training=False)
            boxes, scores, classes, count = postprocess.detect(
                outputs["boxes"], outputs["classes"], anchors, self.config.max_detections,
                self.config.nms_iou_threshold)
            return boxes, tf.cast(classes, tf.float32), scores, tf.cast(count, tf.float32)
        return predict

    def scores(self, outputs, truths, class_names):
        """COCO mAP (`evaluation.coco_map`) of detections `outputs` against the images'
        objects `truths` ([images, most, 5], padded with class -1)."""
        detections = [(boxes[:n], scores[:n], classes[:n].astype(np.int64))
                      for boxes, classes, scores, n in zip(*unpack(outputs), strict=True)]
        objects = [(rows[rows[:, 4] >= 0, :4], rows[rows[:, 4] >= 0, 4].astype(np.int64))
                   for rows in np.asarray(truths)]
        result = coco_map(objects, detections, [(NOMINAL_SIZE, NOMINAL_SIZE)] * len(objects),
                          class_names)
        result.update(images=len(objects), objects=int(sum(len(c) for _, c in objects)))
        return result

    def summary(self, metrics):
        return (f"mAP@[.5:.95] {metrics['map']:.4f}, mAP@.5 {metrics['map50']:.4f}, "
                f"mAP@.75 {metrics['map75']:.4f}")

    def agreement(self, outputs, reference_outputs):
        """The fraction of the reference's confident detections (score >= 0.5) that
        `outputs` find too: same class, IoU >= 0.5, score >= 0.25 (1.0 if it has none)."""
        found = total = 0
        for (boxes, classes, scores, n), (ref_boxes, ref_classes, ref_scores, ref_n) in zip(
                zip(*unpack(outputs)), zip(*unpack(reference_outputs))):
            confident = ref_scores[:ref_n] >= AGREEMENT_SCORE
            if not confident.any():
                continue
            total += int(confident.sum())
            kept = scores[:n] >= AGREEMENT_FOUND
            if not kept.any():
                continue
            overlaps = iou(ref_boxes[:ref_n][confident], boxes[:n][kept])
            same = ref_classes[:ref_n][confident][:, None] == classes[:n][kept][None, :]
            found += int(((overlaps >= AGREEMENT_IOU) & same).any(axis=1).sum())
        return found / total if total else 1.0

    def plot(self, metrics, class_names, path_prefix, examples=None):
        """Writes `<path_prefix>.detections.png`: a few images with their objects (green) and
        the confident detections (red, score >= 0.5), given `examples` (images, outputs,
        truths)."""
        if examples is not None:
            plot_detections(*examples, class_names, f"{path_prefix}.detections.png")

    def check_model(self, input_shape, output_shape, class_names):
        """An error message if a model's shapes do not fit this task and data, else None. A
        Keras SSDLite has two outputs, box codes [anchors, 4] and class logits [anchors,
        classes + 1] (Keras lists them by name); a .tflite file, the post-process op's four."""
        if len(input_shape) != 4 or input_shape[-1] != 3:
            return f"takes inputs of shape {tuple(input_shape)}; expected RGB images"
        shapes = list(output_shape.values()) if isinstance(output_shape, dict) else output_shape
        if isinstance(shapes, list) and len(shapes) == 4:  # a file's boxes, classes, ...
            return None
        if (isinstance(shapes, list) and len(shapes) == 2 and all(len(s) == 3 for s in shapes)
                and 4 in (shapes[0][-1], shapes[1][-1])):  # Keras: codes and class logits
            codes = 0 if shapes[0][-1] == 4 else 1
            classes = shapes[1 - codes][-1] - 1  # background first
            if classes != len(class_names):
                return f"detects {classes} classes but the data has {len(class_names)}"
            return None
        return "is not a detection model (SSDLite's boxes and classes, or a file ending in " \
               "TFLite_Detection_PostProcess)"

    def metadata(self, content, labels, name, description, version):
        from mobilenets.tflite import metadata

        return metadata.add_detection_metadata(content, labels=labels, name=name,
                                               description=description, version=version,
                                               author="mobilenets")

    def to_tflite(self, model, mode, calibration):
        """The .tflite bytes of `mode` (float32 or int8), ending in the post-process op."""
        return export.to_tflite(model, mode, calibration,
                                max_detections=self.config.max_detections,
                                iou_threshold=self.config.nms_iou_threshold)

    def pretrained_part(self, model):
        """What `model.weights` (a classifier's) load into: SSDLite's backbone."""
        return ssdlite.backbone_part(model)

    @classmethod
    def recognizes(cls, input_shape, output_shapes):
        """A file's four TFLite_Detection_PostProcess outputs, or SSDLite's box codes and
        class logits by name."""
        if isinstance(output_shapes, dict):
            return set(output_shapes) == {"boxes", "classes"}
        return len(output_shapes) == 4

    def keras_runner(self, model):
        detect = self.predictions(model)
        return lambda batch: [np.asarray(o) for o in detect(batch)]

    def classes_of(self, output_shapes):
        """A Keras SSDLite's classes (its logits count the background too); a file's: unknown."""
        if isinstance(output_shapes, dict):
            return int(output_shapes["classes"][-1]) - 1
        return None

    def predict(self, outputs, labels, top, image_path, masks_dir=None):
        """The `top` best detections of one image, boxes as [ymin, xmin, ymax, xmax]
        fractions of it."""
        boxes, classes, scores, count = (np.asarray(o)[0] for o in outputs)
        found = min(int(np.asarray(count).reshape(-1)[0]), top)
        return {"image": str(image_path), "detections": [
            {"label": labels[int(classes[i])] if labels else str(int(classes[i])),
             "index": int(classes[i]), "score": float(scores[i]),
             "box": [round(float(v), 4) for v in boxes[i]]} for i in range(found)]}

    def describe(self, result):
        return ", ".join(f"{d['label']} {d['score']:.3f} at {d['box']}"
                         for d in result["detections"]) or NO_RESULT


def objects_as_they_are(objects):
    """The truth scores compare with: an image's padded objects."""
    return objects



def unpack(outputs):
    """(boxes, classes, scores, count) as numpy arrays, classes and count as integers (a
    file's rows past the count may hold anything: they become zeros)."""
    boxes, classes, scores, count = (np.nan_to_num(np.asarray(o, np.float32), posinf=0.0,
                                                   neginf=0.0) for o in outputs)
    classes = np.clip(np.round(classes), -1, np.iinfo(np.int32).max)
    return boxes, classes.astype(np.int64), scores, np.round(count).astype(np.int64).reshape(-1)


def iou(a, b):
    """IoU of every box of `a` [A, 4] with every box of `b` [B, 4], corners."""
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def plot_detections(images, outputs, truths, class_names, png, count=8, threshold=0.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    boxes, classes, scores, found = unpack(outputs)
    count = min(count, len(images))
    columns = min(4, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        image = np.asarray(images[index])
        height, width = image.shape[:2]
        axis.imshow(np.clip(image, 0, 255).astype(np.uint8).squeeze(), cmap="gray")
        drawn = [(row[:4], int(row[4]), None, "lime") for row in truths[index] if row[4] >= 0]
        drawn += [(box, label, score, "red") for box, label, score in zip(
            boxes[index][:found[index]], classes[index][:found[index]],
            scores[index][:found[index]]) if score >= threshold]
        for (ymin, xmin, ymax, xmax), label, score, colour in drawn:
            axis.add_patch(plt.Rectangle((xmin * width, ymin * height), (xmax - xmin) * width,
                                         (ymax - ymin) * height, fill=False, color=colour))
            if score is not None:
                axis.text(xmin * width, ymin * height, f"{class_names[label]} {score:.2f}",
                          color="white", fontsize=6, backgroundcolor=colour)
    figure.suptitle("objects (green), detections scoring >= 0.5 (red)", fontsize=9)
    figure.tight_layout()
    figure.savefig(png, dpi=100)
    plt.close(figure)
