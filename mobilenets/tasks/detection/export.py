"""SSDLite to a .tflite file that ends in TFLite_Detection_PostProcess, the op Android's
detection clients (MediaPipe Tasks' ObjectDetector, the TFLite Task Library) expect: four
outputs, boxes [1, max, 4] ([ymin, xmin, ymax, xmax] fractions), classes [1, max] (0-based),
scores [1, max] and the count [1].

The op has no TensorFlow kernel: a tf.function marked `experimental_implements` with its name
and attributes stands in for it, and the converter puts the op in its place (as TF's Object
Detection API exports its SSD models). The model's variables are frozen to constants first: the
converter's own freezing inlines functions and would lose the marked one.
"""

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (  # noqa: TID251 - see above
    convert_variables_to_constants_v2,
)

from mobilenets.tasks.detection import anchors as anchor_lib
from mobilenets.tasks.detection import boxes as box_ops
from mobilenets.tasks.detection import postprocess, ssdlite
from mobilenets.tflite import xnnpack


def postprocess_signature(num_classes, max_detections, iou_threshold, score_threshold):
    """The attributes of TFLite_Detection_PostProcess, as `experimental_implements` takes
    them: fast NMS over the best class of each box (use_regular_nms false, what phones run)."""
    attributes = {"max_detections": ("i", max_detections), "max_classes_per_detection": ("i", 1),
                  "detections_per_class": ("i", max_detections),
                  "use_regular_nms": ("b", "false"), "nms_score_threshold": ("f", score_threshold),
                  "nms_iou_threshold": ("f", iou_threshold), "num_classes": ("i", num_classes),
                  "y_scale": ("f", box_ops.SCALES[0]), "x_scale": ("f", box_ops.SCALES[1]),
                  "h_scale": ("f", box_ops.SCALES[2]), "w_scale": ("f", box_ops.SCALES[3])}
    return " ".join(['name: "TFLite_Detection_PostProcess"'] + [
        f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}'
        for key, (kind, value) in attributes.items()])


def serving_function(model, spec=anchor_lib.AnchorSpec(),
                     max_detections=postprocess.MAX_DETECTIONS,
                     iou_threshold=postprocess.IOU_THRESHOLD,
                     score_threshold=postprocess.SCORE_THRESHOLD):
    """A tf.function image [1, H, W, C] float -> (boxes, classes, scores, count), the model
    frozen, its scores by softmax, the post-process op's stand-in at the end."""
    shape = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name="image")
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda image: model(image, training=False)).get_concrete_function(shape))
    names = sorted(model.output)  # the order Keras flattens a dict of outputs in
    num_classes = model.output["classes"].shape[-1] - 1
    corners = anchor_lib.generate(ssdlite.grid_sizes(model), spec)
    centre = np.stack([t.numpy() for t in box_ops.centre_form(corners)], axis=1)

    @tf.function(experimental_implements=postprocess_signature(
        num_classes, max_detections, iou_threshold, score_threshold))
    def detection_postprocess(box_encodings, class_predictions, anchors):
        del box_encodings, class_predictions, anchors  # the op computes; this only stands in
        return (tf.zeros([1, max_detections, 4], name="boxes"),
                tf.zeros([1, max_detections], name="classes"),
                tf.zeros([1, max_detections], name="scores"), tf.zeros([1], name="count"))

    @tf.function(input_signature=[shape])
    def serve(image):
        outputs = dict(zip(names, frozen(image), strict=True))
        scores = tf.nn.softmax(outputs["classes"], axis=-1)
        return detection_postprocess(outputs["boxes"], scores, tf.constant(centre, tf.float32))

    return serve


def to_tflite(model, mode="float32", representative_dataset=None, **options):
    """The .tflite bytes of SSDLite `model` with the post-process op (`serving_function`'s
    options). `mode` "float32", or "int8": int8 weights and activations calibrated on
    `representative_dataset`, uint8 pixel input when the model takes [0, 255] pixels (else
    float), float outputs; the scores' softmax and the post-process op run in float, everything
    else in int8 inside XNNPACK (`xnnpack.rewire_int8`)."""
    serve = serving_function(model, **options)
    holder = tf.Module()
    holder.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()],
                                                                holder)
    converter.allow_custom_ops = True
    if mode == "float32":
        return converter.convert()
    if mode != "int8":
        raise ValueError(f"mode must be float32 or int8, got {mode!r}")
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    # the post-process op is a custom op: the builtins' float kernels stay allowed around it
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                           tf.lite.OpsSet.TFLITE_BUILTINS]
    pixels = any(layer.name.removeprefix("quant_") == "preprocess"  # include_preprocessing
                 for layer in model.layers)
    return xnnpack.rewire_int8(converter.convert(), pixels_input=pixels, float_softmax=True)
