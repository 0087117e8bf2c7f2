"""MobileNeXt (Zhou et al. 2020, arXiv 2007.02269): sandglass blocks."""

import dataclasses
import math

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import conv_bn, drop_path_rates, make_divisible, sandglass


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the paper's Table 3: `n` sandglass blocks, the first with stride `s`."""

    t: int  # reduction ratio of the 1x1 bottleneck (input channels / t)
    c: int  # output channels
    n: int  # repeats
    s: int  # stride of the first block


# Table 3, input 224x224x3; the stem is a 3x3 conv with 32 channels and stride 2.
ROWS = (
    Row(t=2, c=96, n=1, s=2),  # 112x112x32
    Row(t=6, c=144, n=1, s=1),  # 56x56x96
    Row(t=6, c=192, n=3, s=2),  # 56x56x144
    Row(t=6, c=288, n=3, s=2),  # 28x28x192
    Row(t=6, c=384, n=4, s=1),  # 14x14x288
    Row(t=6, c=576, n=4, s=2),  # 14x14x384
    Row(t=6, c=960, n=3, s=1),  # 7x7x576
    Row(t=6, c=1280, n=1, s=1),  # 7x7x960
)
BN_MOMENTUM = 0.999


def reduced_width(in_channels, out_channels, t):
    """The 1x1 bottleneck width: input / t, but at least out / 6 rounded up to a multiple of 16."""
    reduced = in_channels // t
    if reduced < out_channels / 6:
        reduced = make_divisible(math.ceil(out_channels / 6), 16)
    return reduced


def build(common, *, alpha=1.0, identity_ratio=1.0, output_stride=32, drop_path=0.0):
    """MobileNeXt with width multiplier `alpha` and identity tensor multiplier `identity_ratio`
    (the fraction of channels the shortcut adds to; the paper's best trade-off is 0.5).

    Blocks follow the authors' code (mnext.py of zhoudaquan/rethinking_bottleneck_design), whose
    counts the paper reports (3.5M parameters, 300M multiply-adds): a block that changes width
    drops its first depthwise conv, and its last one unless it strides, except in the first row
    (t = 2) and in the single-block stride-1 rows (96 -> 144 and 960 -> 1280), which keep both
    (the code's `keep_3x3`); the bottleneck width follows `reduced_width`. `drop_path`: the
    largest stochastic-depth rate (`layers.drop_path_rates`; needs `identity_ratio` 1.0).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if not 0.0 < identity_ratio <= 1.0:
        raise ValueError(f"identity_ratio must be in (0, 1], got {identity_ratio!r}")
    rates = drop_path_rates(drop_path, sum(row.n for row in ROWS))
    if drop_path and identity_ratio < 1.0:
        raise ValueError("drop_path needs identity_ratio 1.0: a block whose shortcut covers "
                         f"only part of its channels ({identity_ratio}) cannot be skipped")
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = features.add(conv_bn(x, make_divisible(32 * alpha), 3, strides=strides,
                             activation_kind="relu6", bn_momentum=BN_MOMENTUM, name="stem"))
    block = 0
    for row in ROWS:
        filters = make_divisible(row.c * alpha)
        if row is ROWS[-1] and alpha < 1.0:
            filters = row.c
        for repeat in range(row.n):
            in_channels = x.shape[-1]
            keep_dw = row.t == 2 or in_channels == filters or (row.n == 1 and row.s == 1)
            nominal = row.s if repeat == 0 else 1
            strides, dilation = features.stride(nominal)
            x = sandglass(x, reduced=reduced_width(in_channels, filters, row.t), filters=filters,
                          strides=strides, dilation=dilation, identity_ratio=identity_ratio,
                          first_dw=keep_dw, last_dw=keep_dw or nominal > 1,
                          bn_momentum=BN_MOMENTUM, drop_path=rates[block], name=f"block{block}")
            features.add(x)
            block += 1
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name("mobilenext", alpha),
                   default_dropout=0.2)
