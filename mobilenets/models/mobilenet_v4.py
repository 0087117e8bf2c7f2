"""MobileNetV4 convolutional models (Qin et al. 2024, arXiv 2404.10518): the Universal
Inverted Bottleneck.

Rows as the paper's Tables 10-12 (Conv-S, Conv-M, Conv-L), which timm's and TF Model Garden's
definitions follow block for block. The hybrid models (Mobile MQA) are not built yet.
"""

import dataclasses

from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import (
    conv_bn,
    depthwise_bn,
    drop_path_rates,
    make_divisible,
    residual_add,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One block of the paper's tables.

    kind: "conv" (k x k conv + BN + ReLU), "fused" (FusedIB: k x k conv expanding, 1x1
    projecting) or "uib"; for "uib", `start` and `mid` are the kernels of its depthwise convs
    before the expansion and after it (0: none): ExtraDW (both), IB (mid only), ConvNext-like
    (start only), FFN (neither).
    """

    kind: str
    c: int  # output channels
    s: int = 1  # stride
    k: int = 3  # kernel of "conv" and "fused"
    e: float = 1.0  # expansion ratio
    start: int = 0
    mid: int = 0


def uib(c, start, mid, s=1, e=4.0, n=1):
    """`n` UIB rows, the first striding by `s`."""
    return tuple(Row("uib", c, s if i == 0 else 1, e=e, start=start, mid=mid) for i in range(n))


# Table 10 (Conv-S), input 224x224x3; stem 3x3 conv, 32 channels, stride 2.
CONV_SMALL = (
    Row("conv", 32, 2, k=3), Row("conv", 32, 1, k=1),
    Row("conv", 96, 2, k=3), Row("conv", 64, 1, k=1),
    *uib(96, 5, 5, s=2, e=3), *uib(96, 0, 3, e=2, n=4), *uib(96, 3, 0, e=4),
    *uib(128, 3, 3, s=2, e=6), *uib(128, 5, 5, e=4), *uib(128, 0, 5, e=4), *uib(128, 0, 5, e=3),
    *uib(128, 0, 3, e=4, n=2),
)
# Table 11 (Conv-M); stem 32 channels.
CONV_MEDIUM = (
    Row("fused", 48, 2, k=3, e=4),
    *uib(80, 3, 5, s=2, e=4), *uib(80, 3, 3, e=2),
    *uib(160, 3, 5, s=2, e=6), *uib(160, 3, 3, e=4, n=2), *uib(160, 3, 5, e=4),
    *uib(160, 3, 3, e=4), *uib(160, 3, 0, e=4), *uib(160, 0, 0, e=2), *uib(160, 3, 0, e=4),
    *uib(256, 5, 5, s=2, e=6), *uib(256, 5, 5, e=4), *uib(256, 3, 5, e=4, n=2),
    *uib(256, 0, 0, e=4), *uib(256, 3, 0, e=4), *uib(256, 3, 5, e=2), *uib(256, 5, 5, e=4),
    *uib(256, 0, 0, e=4, n=2), *uib(256, 5, 0, e=2),
)
# Table 12 (Conv-L); stem 24 channels.
CONV_LARGE = (
    Row("fused", 48, 2, k=3, e=4),
    *uib(96, 3, 5, s=2, e=4), *uib(96, 3, 3, e=4),
    *uib(192, 3, 5, s=2, e=4), *uib(192, 3, 3, e=4, n=3), *uib(192, 3, 5, e=4),
    *uib(192, 5, 3, e=4, n=5), *uib(192, 3, 0, e=4),
    *uib(512, 5, 5, s=2, e=4, n=4), *uib(512, 5, 0, e=4), *uib(512, 5, 3, e=4),
    *uib(512, 5, 0, e=4, n=2), *uib(512, 5, 3, e=4), *uib(512, 5, 5, e=4),
    *uib(512, 5, 0, e=4, n=3),
)
VARIANTS = {"conv_small": (CONV_SMALL, 32), "conv_medium": (CONV_MEDIUM, 32),
            "conv_large": (CONV_LARGE, 24)}
LAST_CHANNELS = 960  # the 1x1 conv after the last stage
HEAD_CHANNELS = 1280  # the 1x1 conv (with BN) on the pooled features
BN_MOMENTUM = 0.99


def build(common, *, variant="conv_small", alpha=1.0, output_stride=32, drop_path=0.0):
    """A MobileNetV4 convolutional model; `alpha` multiplies every block's output channels
    (the stem keeps its width below 1.0, as timm's `fix_stem`); `drop_path`: the largest
    stochastic-depth rate (`layers.drop_path_rates`)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    rows, stem = VARIANTS[variant]
    rates = drop_path_rates(drop_path, len(rows))
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = conv_bn(x, stem if alpha < 1 else make_divisible(stem * alpha), 3, strides=strides,
                activation_kind="relu", bn_momentum=BN_MOMENTUM, name="stem")
    features.add(x)
    for index, row in enumerate(rows):
        strides, dilation = features.stride(row.s)
        x = block(x, row, make_divisible(row.c * alpha), strides, dilation, rates[index],
                  name=f"block{index}")
        features.add(x)
    x = conv_bn(x, make_divisible(LAST_CHANNELS * alpha), 1, activation_kind="relu",
                bn_momentum=BN_MOMENTUM, name="last")
    features.add(x, "last")

    def pre_logits(x):  # a 1x1 conv with BN on the pooled features
        x = layers.Reshape((1, 1, x.shape[-1]), name="pre_logits_reshape")(x)
        x = conv_bn(x, HEAD_CHANNELS, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM,
                    name="pre_logits")
        return layers.Flatten(name="pre_logits_flatten")(x)

    return Network(inputs, features.maps, common.model_name(f"mobilenet_v4_{variant}", alpha),
                   default_dropout=0.2, pre_logits=pre_logits)


def block(x, row, filters, strides, dilation, drop_path, *, name):
    """One row: a conv, a FusedIB or a UIB; residual when it keeps the shape."""
    shortcut, in_channels = x, x.shape[-1]
    if row.kind == "conv":
        return conv_bn(x, filters, row.k, strides=strides, activation_kind="relu",
                       bn_momentum=BN_MOMENTUM, name=name)
    expanded = make_divisible(in_channels * row.e)
    if row.kind == "fused":
        x = conv_bn(x, expanded, row.k, strides=strides, activation_kind="relu",
                    bn_momentum=BN_MOMENTUM, name=f"{name}_fused")
    else:
        if row.start:  # strides here only when there is no middle depthwise conv
            x = depthwise_bn(x, row.start, strides=1 if row.mid else strides,
                             dilation=dilation, bn_momentum=BN_MOMENTUM, name=f"{name}_dw_start")
        x = conv_bn(x, expanded, 1, activation_kind="relu", bn_momentum=BN_MOMENTUM,
                    name=f"{name}_expand")
        if row.mid:
            x = depthwise_bn(x, row.mid, strides=strides, dilation=dilation,
                             activation_kind="relu", bn_momentum=BN_MOMENTUM,
                             name=f"{name}_dw_mid")
    x = conv_bn(x, filters, 1, bn_momentum=BN_MOMENTUM, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        x = residual_add(shortcut, x, name=name, drop_path=drop_path)
    return x
