"""MobileNetV4 (Qin et al. 2024, arXiv 2404.10518): the Universal Inverted Bottleneck and, in
the hybrid models, Mobile MQA attention.

Rows as the paper's Tables 10-12 (Conv-S, Conv-M, Conv-L) and the hybrid models of timm's
`_gen_mobilenet_v4` (the paper gives Hybrid-M and Hybrid-L by their difference to Conv-M and
Conv-L), which TF Model Garden's definitions also follow block for block. The hybrids scale every
UIB and attention block's output by a trained per-channel factor (layer scale, 1e-5 at first);
Hybrid-L uses GELU where the others use ReLU.
"""

import dataclasses

from keras import layers

from mobilenets.models.attention import mobile_mqa
from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import (
    conv_bn,
    depthwise_bn,
    drop_path_rates,
    layer_scale,
    make_divisible,
    residual_add,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One block of the paper's tables.

    kind: "conv" (k x k conv + BN + ReLU), "fused" (FusedIB: k x k conv expanding, 1x1
    projecting), "uib" or "mqa"; for "uib", `start` and `mid` are the kernels of its depthwise
    convs before the expansion and after it (0: none): ExtraDW (both), IB (mid only),
    ConvNext-like (start only), FFN (neither); "mqa" is Mobile MQA with `heads` queries,
    key and value dimension `key_dim`, key and value computed at stride `kv`.
    """

    kind: str
    c: int  # output channels
    s: int = 1  # stride
    k: int = 3  # kernel of "conv" and "fused"
    e: float = 1.0  # expansion ratio
    start: int = 0
    mid: int = 0
    heads: int = 0
    key_dim: int = 0
    kv: int = 1


def uib(c, start, mid, s=1, e=4.0, n=1):
    """`n` UIB rows, the first striding by `s`."""
    return tuple(Row("uib", c, s if i == 0 else 1, e=e, start=start, mid=mid) for i in range(n))


def mqa(c, heads, key_dim, kv=1):
    return Row("mqa", c, heads=heads, key_dim=key_dim, kv=kv)


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
# Hybrid-M: Conv-M's first stages, Mobile MQA in the last two (stem 32).
HYBRID_MEDIUM = (
    Row("fused", 48, 2, k=3, e=4),
    *uib(80, 3, 5, s=2, e=4), *uib(80, 3, 3, e=2),
    *uib(160, 3, 5, s=2, e=6), *uib(160, 0, 0, e=2), *uib(160, 3, 3, e=4), *uib(160, 3, 5, e=4),
    mqa(160, 4, 64, kv=2), *uib(160, 3, 3, e=4), mqa(160, 4, 64, kv=2), *uib(160, 3, 0, e=4),
    mqa(160, 4, 64, kv=2), *uib(160, 3, 3, e=4), mqa(160, 4, 64, kv=2), *uib(160, 3, 0, e=4),
    *uib(256, 5, 5, s=2, e=6), *uib(256, 5, 5, e=4), *uib(256, 3, 5, e=4, n=2),
    *uib(256, 0, 0, e=2), *uib(256, 3, 5, e=2), *uib(256, 0, 0, e=2), *uib(256, 0, 0, e=4),
    mqa(256, 4, 64), *uib(256, 3, 0, e=4), mqa(256, 4, 64), *uib(256, 5, 5, e=4),
    mqa(256, 4, 64), *uib(256, 5, 0, e=4), mqa(256, 4, 64), *uib(256, 5, 0, e=4),
)
# Hybrid-L: Conv-L's first stages, Mobile MQA with 8 heads in the last two (stem 24, GELU).
HYBRID_LARGE = (
    Row("fused", 48, 2, k=3, e=4),
    *uib(96, 3, 5, s=2, e=4), *uib(96, 3, 3, e=4),
    *uib(192, 3, 5, s=2, e=4), *uib(192, 3, 3, e=4, n=3), *uib(192, 3, 5, e=4),
    *uib(192, 5, 3, e=4, n=2), mqa(192, 8, 48, kv=2), *uib(192, 5, 3, e=4),
    mqa(192, 8, 48, kv=2), *uib(192, 5, 3, e=4), mqa(192, 8, 48, kv=2), *uib(192, 5, 3, e=4),
    mqa(192, 8, 48, kv=2), *uib(192, 3, 0, e=4),
    *uib(512, 5, 5, s=2, e=4, n=4), *uib(512, 5, 0, e=4), *uib(512, 5, 3, e=4),
    *uib(512, 5, 0, e=4, n=2), *uib(512, 5, 3, e=4), *uib(512, 5, 5, e=4),
    mqa(512, 8, 64), *uib(512, 5, 0, e=4), mqa(512, 8, 64), *uib(512, 5, 0, e=4),
    mqa(512, 8, 64), *uib(512, 5, 0, e=4), mqa(512, 8, 64), *uib(512, 5, 0, e=4),
)


@dataclasses.dataclass(frozen=True)
class Variant:
    rows: tuple
    stem: int  # the stem conv's channels
    activation: str = "relu"
    layer_scale: float | None = None  # the initial factor of the UIB and MQA blocks' layer scale


VARIANTS = {"conv_small": Variant(CONV_SMALL, 32), "conv_medium": Variant(CONV_MEDIUM, 32),
            "conv_large": Variant(CONV_LARGE, 24),
            "hybrid_medium": Variant(HYBRID_MEDIUM, 32, layer_scale=1e-5),
            "hybrid_large": Variant(HYBRID_LARGE, 24, "gelu", layer_scale=1e-5)}
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
    spec = VARIANTS[variant]
    rates = drop_path_rates(drop_path, len(spec.rows))
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = conv_bn(x, spec.stem if alpha < 1 else make_divisible(spec.stem * alpha), 3,
                strides=strides, activation_kind=spec.activation, bn_momentum=BN_MOMENTUM,
                name="stem")
    features.add(x)
    for index, row in enumerate(spec.rows):
        strides, dilation = features.stride(row.s)
        x = block(x, row, make_divisible(row.c * alpha), strides, dilation, rates[index], spec,
                  name=f"block{index}")
        features.add(x)
    x = conv_bn(x, make_divisible(LAST_CHANNELS * alpha), 1, activation_kind=spec.activation,
                bn_momentum=BN_MOMENTUM, name="last")
    features.add(x, "last")

    def pre_logits(x):  # a 1x1 conv with BN on the pooled features
        x = layers.Reshape((1, 1, x.shape[-1]), name="pre_logits_reshape")(x)
        x = conv_bn(x, HEAD_CHANNELS, 1, activation_kind=spec.activation,
                    bn_momentum=BN_MOMENTUM, name="pre_logits")
        return layers.Flatten(name="pre_logits_flatten")(x)

    return Network(inputs, features.maps, common.model_name(f"mobilenet_v4_{variant}", alpha),
                   default_dropout=0.2, pre_logits=pre_logits, pooled_keeps_pre_logits=True)


def block(x, row, filters, strides, dilation, drop_path, spec, *, name):
    """One row: a conv, a FusedIB, a UIB or a Mobile MQA block; residual when it keeps the
    shape. (An MQA block's key and value downsampling stays a stride-2 conv, undilated, in a
    dilated backbone.)"""
    shortcut, in_channels = x, x.shape[-1]
    act = spec.activation
    if row.kind == "conv":
        return conv_bn(x, filters, row.k, strides=strides, activation_kind=act,
                       bn_momentum=BN_MOMENTUM, name=name)
    if row.kind == "mqa":
        return mobile_mqa(x, filters, heads=row.heads, key_dim=row.key_dim, kv_stride=row.kv,
                          bn_momentum=BN_MOMENTUM, layer_scale_init=spec.layer_scale,
                          drop_path=drop_path, name=name)
    expanded = make_divisible(in_channels * row.e)
    if row.kind == "fused":
        x = conv_bn(x, expanded, row.k, strides=strides, activation_kind=act,
                    bn_momentum=BN_MOMENTUM, name=f"{name}_fused")
    else:
        if row.start:  # strides here only when there is no middle depthwise conv
            x = depthwise_bn(x, row.start, strides=1 if row.mid else strides,
                             dilation=dilation, bn_momentum=BN_MOMENTUM, name=f"{name}_dw_start")
        x = conv_bn(x, expanded, 1, activation_kind=act, bn_momentum=BN_MOMENTUM,
                    name=f"{name}_expand")
        if row.mid:
            x = depthwise_bn(x, row.mid, strides=strides, dilation=dilation,
                             activation_kind=act, bn_momentum=BN_MOMENTUM,
                             name=f"{name}_dw_mid")
    x = conv_bn(x, filters, 1, bn_momentum=BN_MOMENTUM, name=f"{name}_project")
    if row.kind == "uib" and spec.layer_scale is not None:
        x = layer_scale(x, spec.layer_scale, name=f"{name}_layer_scale")
    if strides == 1 and in_channels == filters:
        x = residual_add(shortcut, x, name=name, drop_path=drop_path)
    return x
