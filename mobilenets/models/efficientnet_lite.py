"""EfficientNet-Lite (Tan and Le 2019, arXiv 1905.11946; the Lite variants of
tensorflow/tpu's models/official/efficientnet/lite): EfficientNet-B0's stages without
squeeze-excite, with ReLU6, and a stem and head that do not scale, made for int8.

As the reference code (and timm's tf_efficientnet_lite*): widths are multiplied and rounded to
multiples of 8, each stage's repeats multiplied and rounded up, except the first and last
stages'; the stem keeps 32 channels and the head 1280.
"""

import dataclasses
import math

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import conv_bn, drop_path_rates, inverted_residual, make_divisible


@dataclasses.dataclass(frozen=True)
class Stage:
    """One row of EfficientNet-B0's Table 1: MBConv`e` k x k, `c` channels, `n` layers."""

    e: int  # expansion ratio
    k: int  # depthwise kernel
    s: int  # stride of the first layer
    c: int  # output channels
    n: int  # layers


B0 = (
    Stage(e=1, k=3, s=1, c=16, n=1),  # 112x112, after the 3x3 stem (32 channels, stride 2)
    Stage(e=6, k=3, s=2, c=24, n=2),
    Stage(e=6, k=5, s=2, c=40, n=2),
    Stage(e=6, k=3, s=2, c=80, n=3),
    Stage(e=6, k=5, s=1, c=112, n=3),
    Stage(e=6, k=5, s=2, c=192, n=4),
    Stage(e=6, k=3, s=1, c=320, n=1),
)
# name: (width multiplier, depth multiplier, resolution, dropout), as the reference code.
VARIANTS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3),
    "lite4": (1.4, 1.8, 300, 0.3),
}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_MOMENTUM = 0.99


def build(common, *, variant="lite0", alpha=1.0, output_stride=32, drop_path=0.0):
    """EfficientNet-Lite `variant` (lite0-lite4) at `common`'s input size (the variant's own
    resolution is in `VARIANTS`); `alpha` multiplies the variant's width (stem and head stay);
    `drop_path`: the largest stochastic-depth rate (`layers.drop_path_rates`; the reference
    code's drop_connect_rate, 0.2)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    width, depth, _, dropout = VARIANTS[variant]
    width *= alpha
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = conv_bn(x, STEM_CHANNELS, 3, strides=strides, activation_kind="relu6",
                bn_momentum=BN_MOMENTUM, name="stem")
    features.add(x)
    repeats = [stage.n if number in (0, len(B0) - 1) else math.ceil(stage.n * depth)
               for number, stage in enumerate(B0)]  # the first and last stages are not deepened
    rates = drop_path_rates(drop_path, sum(repeats))
    index = 0
    for stage, repeat_count in zip(B0, repeats):
        filters = make_divisible(stage.c * width)
        for repeat in range(repeat_count):
            strides, dilation = features.stride(stage.s if repeat == 0 else 1)
            x = inverted_residual(
                x, expanded=make_divisible(x.shape[-1] * stage.e), filters=filters,
                kernel_size=stage.k, strides=strides, dilation=dilation,
                activation_kind="relu6", bn_momentum=BN_MOMENTUM, drop_path=rates[index],
                name=f"block{index}")
            features.add(x)
            index += 1
    x = conv_bn(x, HEAD_CHANNELS, 1, activation_kind="relu6", bn_momentum=BN_MOMENTUM,
                name="head")
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name(f"efficientnet_{variant}", alpha),
                   default_dropout=dropout)
