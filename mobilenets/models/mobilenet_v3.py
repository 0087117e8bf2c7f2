"""MobileNetV3 Large and Small (Howard et al. 2019, arXiv 1905.02244): SE and hard-swish."""

import dataclasses

from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import (
    activation,
    conv_bn,
    drop_path_rates,
    inverted_residual,
    make_divisible,
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One bneck row of the paper's Tables 1 and 2."""

    k: int  # depthwise kernel size
    exp: int  # expansion size (expanded channels at width 1.0)
    c: int  # output channels
    se: bool  # squeeze-and-excite
    nl: str  # non-linearity: "RE" (ReLU) or "HS" (hard-swish)
    s: int  # stride


# Table 1 (Large), input 224x224x3; stem 3x3 conv, 16 channels, stride 2, hard-swish.
LARGE = (
    Row(k=3, exp=16, c=16, se=False, nl="RE", s=1),  # 112x112x16
    Row(k=3, exp=64, c=24, se=False, nl="RE", s=2),  # 112x112x16
    Row(k=3, exp=72, c=24, se=False, nl="RE", s=1),  # 56x56x24
    Row(k=5, exp=72, c=40, se=True, nl="RE", s=2),  # 56x56x24
    Row(k=5, exp=120, c=40, se=True, nl="RE", s=1),  # 28x28x40
    Row(k=5, exp=120, c=40, se=True, nl="RE", s=1),  # 28x28x40
    Row(k=3, exp=240, c=80, se=False, nl="HS", s=2),  # 28x28x40
    Row(k=3, exp=200, c=80, se=False, nl="HS", s=1),  # 14x14x80
    Row(k=3, exp=184, c=80, se=False, nl="HS", s=1),  # 14x14x80
    Row(k=3, exp=184, c=80, se=False, nl="HS", s=1),  # 14x14x80
    Row(k=3, exp=480, c=112, se=True, nl="HS", s=1),  # 14x14x80
    Row(k=3, exp=672, c=112, se=True, nl="HS", s=1),  # 14x14x112
    Row(k=5, exp=672, c=160, se=True, nl="HS", s=2),  # 14x14x112
    Row(k=5, exp=960, c=160, se=True, nl="HS", s=1),  # 7x7x160
    Row(k=5, exp=960, c=160, se=True, nl="HS", s=1),  # 7x7x160
)
# Table 2 (Small), input 224x224x3; same stem.
SMALL = (
    Row(k=3, exp=16, c=16, se=True, nl="RE", s=2),  # 112x112x16
    Row(k=3, exp=72, c=24, se=False, nl="RE", s=2),  # 56x56x16
    Row(k=3, exp=88, c=24, se=False, nl="RE", s=1),  # 28x28x24
    Row(k=5, exp=96, c=40, se=True, nl="HS", s=2),  # 28x28x24
    Row(k=5, exp=240, c=40, se=True, nl="HS", s=1),  # 14x14x40
    Row(k=5, exp=240, c=40, se=True, nl="HS", s=1),  # 14x14x40
    Row(k=5, exp=120, c=48, se=True, nl="HS", s=1),  # 14x14x40
    Row(k=5, exp=144, c=48, se=True, nl="HS", s=1),  # 14x14x48
    Row(k=5, exp=288, c=96, se=True, nl="HS", s=2),  # 14x14x48
    Row(k=5, exp=576, c=96, se=True, nl="HS", s=1),  # 7x7x96
    Row(k=5, exp=576, c=96, se=True, nl="HS", s=1),  # 7x7x96
)
STEM_CHANNELS = 16
SE_RATIO = 0.25
BN_MOMENTUM = 0.999


def build_large(common, *, alpha=1.0, minimalistic=False, output_stride=32, drop_path=0.0):
    """MobileNetV3-Large; see `build`."""
    return build(common, LARGE, 1280, alpha=alpha, minimalistic=minimalistic,
                 output_stride=output_stride, name="mobilenet_v3_large", drop_path=drop_path)


def build_small(common, *, alpha=1.0, minimalistic=False, output_stride=32, drop_path=0.0):
    """MobileNetV3-Small; see `build`."""
    return build(common, SMALL, 1024, alpha=alpha, minimalistic=minimalistic,
                 output_stride=output_stride, name="mobilenet_v3_small", drop_path=drop_path)


def build(common, rows, head_channels, *, alpha, minimalistic, output_stride, name,
          drop_path=0.0):
    """Builds a MobileNetV3 from its table rows.

    As keras.applications (the reference): the stem keeps 16 channels at every width; expansions
    are ratios of the block's actual input width, rounded by `make_divisible`; the SE width is a
    quarter of the expanded width; the 1x1 head conv is 6x the last block's width; the pre-logits
    layer (1280 / 1024, no BN) grows with alpha > 1 only. `minimalistic` drops SE and hard-swish
    and uses 3x3 kernels only. `drop_path`: the largest stochastic-depth rate
    (`layers.drop_path_rates`).
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if not isinstance(minimalistic, bool):
        raise ValueError(f"minimalistic must be true or false, got {minimalistic!r}")
    hswish = "relu" if minimalistic else "hard_swish"
    features = FeatureMaps(output_stride)
    inputs, x = common.inputs()
    strides, _ = features.stride(2)
    x = conv_bn(x, STEM_CHANNELS, 3, strides=strides, activation_kind=hswish,
                bn_momentum=BN_MOMENTUM, name="stem")
    features.add(x)
    paper_in = STEM_CHANNELS
    rates = drop_path_rates(drop_path, len(rows))
    for index, row in enumerate(rows):
        expanded = make_divisible(x.shape[-1] * row.exp / paper_in)
        se = row.se and not minimalistic
        to = f"expansion_to_{features.nominal * row.s}"
        strides, dilation = features.stride(row.s)
        x = inverted_residual(
            x, expanded=expanded, filters=make_divisible(row.c * alpha),
            kernel_size=3 if minimalistic else row.k, strides=strides, dilation=dilation,
            activation_kind=hswish if row.nl == "HS" else "relu",
            se_channels=make_divisible(expanded * SE_RATIO) if se else 0,
            bn_momentum=BN_MOMENTUM, drop_path=rates[index], name=f"block{index}",
            on_expanded=(lambda e, to=to: features.add(e, to)) if row.s > 1 else None)
        features.add(x)
        paper_in = row.c
    x = conv_bn(x, make_divisible(x.shape[-1] * 6), 1, activation_kind=hswish,
                bn_momentum=BN_MOMENTUM, name="head")
    features.add(x, "last")
    width = make_divisible(head_channels * alpha) if alpha > 1.0 else head_channels

    def pre_logits(x):  # the paper's 1x1 conv on the pooled features, without BN
        x = layers.Dense(width, name="pre_logits_dense")(x)
        return activation(x, hswish, name="pre_logits")

    return Network(inputs, features.maps, common.model_name(name, alpha), default_dropout=0.2,
                   pre_logits=pre_logits)
