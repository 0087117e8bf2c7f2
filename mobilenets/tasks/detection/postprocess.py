"""From SSDLite's outputs to detections, as the exported file's TFLite_Detection_PostProcess op
computes them on the phone (its fast mode, what TF's Object Detection API exports): box codes
decoded on their anchors, class scores by softmax with the background column dropped, each box
kept with its best class, then one non-maximum suppression over all boxes (IoU 0.6, up to 100
detections). Scoring the Keras model this way gives the figures the shipped file gives; the
papers' COCO figures use per-class suppression, which keeps more low-scored candidates."""

import tensorflow as tf

from mobilenets.tasks.detection import boxes as box_ops

IOU_THRESHOLD = 0.6
MAX_DETECTIONS = 100
SCORE_THRESHOLD = 1e-8


def detect(box_codes, class_logits, anchors, max_detections=MAX_DETECTIONS,
           iou_threshold=IOU_THRESHOLD, score_threshold=SCORE_THRESHOLD):
    """(boxes [B, max, 4] corners, scores [B, max], classes [B, max] 0-based, count [B]) from a
    batch of outputs, best first; rows past `count` are zeros."""
    decoded = box_ops.decode(box_codes, anchors)
    scores = tf.nn.softmax(tf.cast(class_logits, tf.float32), axis=-1)[..., 1:]
    best = tf.reduce_max(scores, axis=-1)
    classes = tf.argmax(scores, axis=-1, output_type=tf.int32)
    kept, count = tf.image.non_max_suppression_padded(
        decoded, best, max_detections, iou_threshold=iou_threshold,
        score_threshold=score_threshold, pad_to_max_output_size=True)
    valid = tf.range(max_detections)[None, :] < count[:, None]

    def picked(values):
        gathered = tf.gather(values, kept, batch_dims=1)
        mask = valid if gathered.shape.rank == 2 else valid[:, :, None]  # boxes: [B, max, 4]
        return tf.where(mask, gathered, tf.zeros_like(gathered))

    return picked(decoded), picked(best), picked(classes), count
