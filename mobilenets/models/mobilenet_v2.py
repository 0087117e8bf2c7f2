"""MobileNetV2 (Sandler et al. 2018, arXiv 1801.04381): inverted residuals, linear bottlenecks."""

import dataclasses

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import conv_bn, drop_path_rates, inverted_residual, make_divisible


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the paper's Table 2: `n` bottleneck blocks, the first with stride `s`."""

    t: int  # expansion factor
    c: int  # output channels
    n: int  # repeats
    s: int  # stride of the first block


# Table 2, input 224x224x3; the stem is a 3x3 conv with 32 channels and stride 2.
ROWS = (
    Row(t=1, c=16, n=1, s=1),  # 112x112x32
    Row(t=6, c=24, n=2, s=2),  # 112x112x16
    Row(t=6, c=32, n=3, s=2),  # 56x56x24
    Row(t=6, c=64, n=4, s=2),  # 28x28x32
    Row(t=6, c=96, n=3, s=1),  # 14x14x64
    Row(t=6, c=160, n=3, s=2),  # 14x14x96
    Row(t=6, c=320, n=1, s=1),  # 7x7x160
)
HEAD_CHANNELS = 1280
BN_MOMENTUM = 0.999


def build(common, *, alpha=1.0, output_stride=32, drop_path=0.0):
    """MobileNetV2 with width multiplier `alpha`; the 1280-channel head conv only grows
    (alpha > 1) and is kept at 1280 for alpha < 1, as in the paper. `drop_path`: the largest
    stochastic-depth rate (`layers.drop_path_rates`)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = conv_bn(x, make_divisible(32 * alpha), 3, strides=strides, activation_kind="relu6",
                bn_momentum=BN_MOMENTUM, name="stem")
    rates = drop_path_rates(drop_path, sum(row.n for row in ROWS))
    block = 0
    for row in ROWS:
        for repeat in range(row.n):
            nominal = row.s if repeat == 0 else 1
            to = f"expansion_to_{features.nominal * nominal}"
            strides, dilation = features.stride(nominal)
            x = inverted_residual(
                x, expanded=x.shape[-1] * row.t, filters=make_divisible(row.c * alpha),
                strides=strides, dilation=dilation, drop_path=rates[block], name=f"block{block}",
                on_expanded=(lambda e, to=to: features.add(e, to)) if nominal > 1 else None)
            features.add(x)
            block += 1
    head = make_divisible(HEAD_CHANNELS * alpha) if alpha > 1.0 else HEAD_CHANNELS
    x = conv_bn(x, head, 1, activation_kind="relu6", bn_momentum=BN_MOMENTUM, name="head")
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name("mobilenet_v2", alpha))
