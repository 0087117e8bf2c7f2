"""The segmentation task's config section, `task.segmentation.*`."""

import dataclasses
from typing import Literal

from mobilenets.schema import option


@dataclasses.dataclass
class SegmentationConfig:
    head: Literal["deeplab_v3", "lraspp"] = option(
        "deeplab_v3", "deeplab_v3 (the MobileNetV2 paper's light head: 1x1 conv beside image "
        "pooling) or lraspp (the MobileNetV3 paper's, on stride-8 and stride-16 maps)")
    output_stride: Literal[8, 16] = option(
        16, "deeplab_v3: the backbone's output stride (its last blocks dilated instead of "
        "strided); lraspp is always 16")
    aspp: bool = option(False, "deeplab_v3: add ASPP's three dilated 3x3 convs (the paper's "
                        "Table 7 'ASPP' row)")
