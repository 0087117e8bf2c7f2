"""MobileNetV1 (Howard et al. 2017, arXiv 1704.04861): depthwise separable convolutions."""

import dataclasses

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import conv_bn, depthwise_separable


@dataclasses.dataclass(frozen=True)
class Row:
    """One depthwise separable layer of the paper's Table 1."""

    s: int  # depthwise stride
    c: int  # pointwise output channels


# Table 1, input 224x224x3. The paper lists the last layer with stride 2, a known typo: its own
# output size (7x7) and every implementation (TF-slim, keras.applications) use stride 1.
ROWS = (
    Row(s=1, c=64),  # 112x112x32
    Row(s=2, c=128),  # 112x112x64
    Row(s=1, c=128),  # 56x56x128
    Row(s=2, c=256),  # 56x56x128
    Row(s=1, c=256),  # 28x28x256
    Row(s=2, c=512),  # 28x28x256
    *[Row(s=1, c=512)] * 5,  # 14x14x512
    Row(s=2, c=1024),  # 14x14x512
    Row(s=1, c=1024),  # 7x7x1024
)
BN_MOMENTUM = 0.99  # keras.applications' value for V1


def build(common, *, alpha=1.0, depth_multiplier=1, output_stride=32):
    """MobileNetV1 with width multiplier `alpha` (channels truncated to int, as the reference)
    and `depth_multiplier` (depthwise channel multiplier)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if not isinstance(depth_multiplier, int) or depth_multiplier < 1:
        raise ValueError(f"depth_multiplier must be a positive integer, got {depth_multiplier!r}")
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = features.add(conv_bn(x, int(32 * alpha), 3, strides=strides, activation_kind="relu6",
                             bn_momentum=BN_MOMENTUM, name="stem"))
    for index, row in enumerate(ROWS, start=1):
        strides, dilation = features.stride(row.s)
        x = depthwise_separable(x, int(row.c * alpha), strides=strides, dilation=dilation,
                                depth_multiplier=depth_multiplier, bn_momentum=BN_MOMENTUM,
                                name=f"block{index}")
        features.add(x)
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name("mobilenet_v1", alpha),
                   default_dropout=1e-3)
