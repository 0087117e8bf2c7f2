"""ShuffleNet V2 (Ma et al. 2018, arXiv 1807.11164): channel split and shuffle."""

import dataclasses

from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import (
    ChannelSplit,
    channel_shuffle,
    conv_bn,
    depthwise_bn,
    max_pool,
)

# Table 5: output channels of stages 2-4 and of conv5, per network width.
STAGE_CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                  1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of Table 5: `n` units, the first with stride 2."""

    n: int


# Table 5, input 224x224x3; the stem is a 3x3 conv (24 channels, stride 2) and a 3x3/2 max pool.
STAGES = (Stage(n=4), Stage(n=8), Stage(n=4))  # stage 2 at 56x56, stage 3 at 28x28, 4 at 14x14
STEM_CHANNELS = 24


def branch(x, channels, *, strides, name):
    """1x1 conv + BN + ReLU -> 3x3 depthwise (stride) + BN -> 1x1 conv + BN + ReLU."""
    x = conv_bn(x, channels, 1, activation_kind="relu", name=f"{name}_pw1")
    x = depthwise_bn(x, 3, strides=strides, name=f"{name}_dw")
    return conv_bn(x, channels, 1, activation_kind="relu", name=f"{name}_pw2")


def shuffle_unit(x, out_channels, *, strides, name):
    """Stride 1: split the channels in half, transform one half (`branch`), concat, shuffle.
    Stride 2: both halves see the whole input; the shortcut half is 3x3/2 depthwise + BN ->
    1x1 conv + BN + ReLU (Figure 3 c, d)."""
    half = out_channels // 2
    if strides == 1:
        shortcut, x = ChannelSplit([half, half], name=f"{name}_split")(x)
    else:
        shortcut = depthwise_bn(x, 3, strides=2, name=f"{name}_shortcut_dw")
        shortcut = conv_bn(shortcut, half, 1, activation_kind="relu", name=f"{name}_shortcut_pw")
    x = branch(x, half, strides=strides, name=f"{name}_branch")
    x = layers.Concatenate(name=f"{name}_concat")([shortcut, x])
    return channel_shuffle(x, 2, name=f"{name}_shuffle")


def build(common, *, alpha=1.0):
    """ShuffleNet V2 at width `alpha` in (0.5, 1.0, 1.5, 2.0), the widths of Table 5."""
    if alpha not in STAGE_CHANNELS:
        raise ValueError(
            f"alpha (ShuffleNet V2 width) must be one of {sorted(STAGE_CHANNELS)}, got {alpha!r}")
    *stage_channels, last_channels = STAGE_CHANNELS[alpha]
    features = FeatureMaps()
    inputs, x = common.inputs()
    features.stride(2)
    x = features.add(conv_bn(x, STEM_CHANNELS, 3, strides=2, activation_kind="relu",
                             name="stem"))
    features.stride(2)
    x = features.add(max_pool(x, name="stem_pool"))
    for stage_index, (stage, channels) in enumerate(zip(STAGES, stage_channels), start=2):
        for unit in range(stage.n):
            strides, _ = features.stride(2 if unit == 0 else 1)
            x = features.add(shuffle_unit(x, channels, strides=strides,
                                          name=f"stage{stage_index}_unit{unit + 1}"))
    x = conv_bn(x, last_channels, 1, activation_kind="relu", name="head")
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name("shufflenet_v2", alpha))
