"""The detection task's config section, `task.detection.*`."""

import dataclasses

from mobilenets.schema import Range, option
from mobilenets.tasks.detection import postprocess


@dataclasses.dataclass
class DetectionConfig:
    match_threshold: float = option(
        0.5, "the IoU at which an anchor is matched to an object (each object also takes its "
        "best anchor)", Range(0, 1, low_open=True))
    focal_loss: bool = option(
        False, "the sigmoid focal loss over every anchor (RetinaNet's) instead of softmax "
        "cross-entropy with 3:1 hard negative mining (SSD's)")
    max_detections: int = option(postprocess.MAX_DETECTIONS,
                                 "the most objects reported per image", Range(1, 1000))
    nms_iou_threshold: float = option(
        postprocess.IOU_THRESHOLD, "non-maximum suppression drops a box overlapping a better "
        "one of its class this much", Range(0, 1, low_open=True))
