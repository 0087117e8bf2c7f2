"""SSD's anchors (Liu et al. 2016), as the TF Object Detection API's `ssd_anchor_generator`
configures them for SSDLite (ssdlite_mobilenet_v2_coco): 6 feature maps, scales spread evenly
from 0.2 to 0.95, aspect ratios 1, 2, 1/2, 3, 1/3 and one more box of ratio 1 at the geometric
mean of a map's scale and the next's; the first map has only 3 boxes (scale 0.1 at ratio 1, its
own scale at 2 and 1/2).

Boxes are [ymin, xmin, ymax, xmax], as fractions of the image (TensorFlow's order).
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class AnchorSpec:
    min_scale: float = 0.2
    max_scale: float = 0.95
    aspect_ratios: tuple = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
    reduce_first: bool = True  # the first map's 3 boxes

    def boxes_per_location(self, maps):
        """(scale, aspect ratio) of each box at one location of each of `maps` feature maps."""
        scales = [self.min_scale + (self.max_scale - self.min_scale) * i / max(maps - 1, 1)
                  for i in range(maps)] + [1.0]
        layers = []
        for i in range(maps):
            if i == 0 and self.reduce_first:
                layers.append([(0.1, 1.0), (scales[0], 2.0), (scales[0], 0.5)])
            else:
                layers.append([(scales[i], ratio) for ratio in self.aspect_ratios]
                              + [(math.sqrt(scales[i] * scales[i + 1]), 1.0)])
        return layers

    def counts(self, maps):
        """How many boxes each of `maps` feature maps has at each location."""
        return [len(boxes) for boxes in self.boxes_per_location(maps)]


def generate(grid_sizes, spec=AnchorSpec()):
    """Every anchor of feature maps of `grid_sizes` [(height, width), ...], in the order a
    head's outputs are flattened (map, row, column, box): float32 [N, 4] corners."""
    boxes = []
    for (height, width), layer in zip(grid_sizes, spec.boxes_per_location(len(grid_sizes)),
                                      strict=True):
        sizes = np.array([(scale / math.sqrt(ratio), scale * math.sqrt(ratio))
                          for scale, ratio in layer])  # (boxes, [h, w])
        y, x = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width,
                           indexing="ij")
        centres = np.stack([y, x], axis=-1)[:, :, None, :]  # (h, w, 1, 2)
        half = sizes[None, None] / 2
        corners = np.concatenate([centres - half, centres + half], axis=-1)
        boxes.append(corners.reshape(-1, 4))
    return np.concatenate(boxes).astype(np.float32)
