"""From SSDLite's outputs to detections, as TF's Object Detection API configures SSDLite (and
TFLite_Detection_PostProcess runs on the phone): box codes decoded on their anchors, class
scores by softmax with the background column dropped, then non-maximum suppression per class
(IoU 0.6, up to 100 detections per class and per image)."""

import tensorflow as tf

from mobilenets.tasks.detection import boxes as box_ops

IOU_THRESHOLD = 0.6
MAX_DETECTIONS = 100
SCORE_THRESHOLD = 1e-8


def detect(box_codes, class_logits, anchors, max_detections=MAX_DETECTIONS,
           iou_threshold=IOU_THRESHOLD, score_threshold=SCORE_THRESHOLD):
    """(boxes [B, max, 4] corners clipped to the image, scores [B, max], classes [B, max]
    0-based, count [B]) from a batch of outputs; rows past `count` are padding."""
    decoded = tf.clip_by_value(box_ops.decode(box_codes, anchors), 0.0, 1.0)
    scores = tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1)[..., 1:]
    result = tf.image.combined_non_max_suppression(
        decoded[:, :, None, :], scores, max_output_size_per_class=max_detections,
        max_total_size=max_detections, iou_threshold=iou_threshold,
        score_threshold=score_threshold, clip_boxes=False)
    return (result.nmsed_boxes, result.nmsed_scores, tf.cast(result.nmsed_classes, tf.int32),
            result.valid_detections)
