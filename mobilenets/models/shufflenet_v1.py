"""ShuffleNet V1 (Zhang et al. 2017, arXiv 1707.01083): group convs and channel shuffle."""

import dataclasses

import keras
from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import (
    activation,
    batch_norm,
    channel_shuffle,
    conv_bn,
    depthwise_bn,
    make_divisible,
    max_pool,
    pad_for_stride,
)

# Table 1: output channels of stages 2-4 for each number of groups g, at scale 1x.
STAGE_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                  4: (272, 544, 1088), 8: (384, 768, 1536)}
SCALES = (0.25, 0.5, 1.0, 1.5, 2.0)  # the paper's "ShuffleNet s x" widths (Table 2)


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of Table 1: `n` units, the first with stride 2."""

    n: int


# Table 1, input 224x224x3; the stem is a 3x3 conv (24 channels at 1x, stride 2) and a 3x3/2
# max pool.
STAGES = (Stage(n=4), Stage(n=8), Stage(n=4))  # stage 2 at 56x56, stage 3 at 28x28, 4 at 14x14
# Stem channels per scale, as the official code (megvii-model/ShuffleNet-Series, network.py;
# the paper gives only 1x's 24): rounded up to a multiple of the groups (16 at 0.5x for g = 8).
# 0.25x is not in the official code and keeps 24.
STEM_CHANNELS = {0.25: 24, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
WIRINGS = ("paper", "official")


def average_pool(x, *, name):
    """3x3/2 average pool written as a depthwise conv with fixed weights 1/9 (not trained).

    XNNPACK has no int8 AVERAGE_POOL_2D, so the pool would leave an int8 file's graph in
    TFLite's reference kernels; a depthwise conv runs inside XNNPACK. Padding counts as zeros
    in the average, as in Caffe's and PyTorch's default average pooling.
    """
    x, padding = pad_for_stride(x, 3, 2, name=name)
    return layers.DepthwiseConv2D(3, strides=2, padding=padding, use_bias=False,
                                  depthwise_initializer=keras.initializers.Constant(1 / 9),
                                  trainable=False, name=name)(x)


def shuffle_unit(x, out_channels, *, groups, strides, name, group_first=True, wiring="paper"):
    """1x1 group conv + BN + ReLU -> channel shuffle -> 3x3 depthwise (stride) + BN ->
    1x1 group conv + BN; stride 1: add the input, ReLU; stride 2: concat the 3x3/2 average-pooled
    input, ReLU (Figure 2 b, c). The bottleneck is a quarter of the unit's output channels.

    `wiring="official"` shuffles as the official code: after the depthwise conv, with the
    transposed reshape, and also after an ungrouped first conv.

    Stride 2 applies the ReLU to the branch before the concatenation instead of after it: the
    same values, since the unit's input (a ReLU or max-pool output) is >= 0 and so is its
    average, but the ReLU then fuses into the conv (XNNPACK has no standalone int8 RELU).
    """
    in_channels = x.shape[-1]
    branch_channels = out_channels - in_channels if strides == 2 else out_channels
    first_groups = groups if group_first else 1
    y = conv_bn(x, out_channels // 4, 1, groups=first_groups, activation_kind="relu",
                name=f"{name}_gconv1")
    official = wiring == "official"
    if first_groups > 1 and not official:  # after an ungrouped conv it would change nothing
        y = channel_shuffle(y, groups, name=f"{name}_shuffle")
    y = depthwise_bn(y, 3, strides=strides, name=f"{name}_dw")
    if official and groups > 1:
        y = channel_shuffle(y, groups, transposed=True, name=f"{name}_shuffle")
    y = layers.Conv2D(branch_channels, 1, groups=groups, use_bias=False,
                      name=f"{name}_gconv2_conv")(y)
    y = batch_norm(y, name=f"{name}_gconv2_bn")
    if strides == 1:
        y = layers.Add(name=f"{name}_add")([x, y])
        return activation(y, "relu", name=name)
    y = activation(y, "relu", name=name)
    shortcut = average_pool(x, name=f"{name}_shortcut_pool")
    return layers.Concatenate(name=f"{name}_concat")([shortcut, y])


def build(common, *, alpha=1.0, groups=3, wiring="paper"):
    """ShuffleNet V1 with `groups` in (1, 2, 3, 4, 8) and scale `alpha` in (0.25, 0.5, 1, 1.5, 2).

    Stage widths are Table 1's scaled by `alpha` and rounded to multiples of 4 * groups so that
    the bottleneck splits into equal groups (exact at 1x, and equal to the official code's at
    every scale it has); the stem has `STEM_CHANNELS`; the first unit's first 1x1 conv is not
    grouped (its input is the stem's few channels), as in the paper.

    `wiring`: "paper" shuffles between the first group conv and the depthwise conv, as Figure 2;
    "official" as the official code, whose published weights need it: for g = 3 the two compute
    the same network up to an order of channels in every unit, for g = 8 they differ.
    """
    if groups not in STAGE_CHANNELS:
        raise ValueError(f"groups must be one of {sorted(STAGE_CHANNELS)}, got {groups!r}")
    if alpha not in SCALES:
        raise ValueError(f"alpha (ShuffleNet scale) must be one of {SCALES}, got {alpha!r}")
    if wiring not in WIRINGS:
        raise ValueError(f"wiring must be one of {WIRINGS}, got {wiring!r}")
    features = FeatureMaps()
    inputs, x = common.inputs()
    features.stride(2)
    stem = make_divisible(STEM_CHANNELS[alpha], groups, min_value=1)
    x = features.add(conv_bn(x, stem, 3, strides=2, activation_kind="relu", name="stem"))
    features.stride(2)
    x = features.add(max_pool(x, name="stem_pool"))
    for stage_index, (stage, channels) in enumerate(zip(STAGES, STAGE_CHANNELS[groups]), start=2):
        out_channels = make_divisible(channels * alpha, 4 * groups)
        for unit in range(stage.n):
            strides, _ = features.stride(2 if unit == 0 else 1)
            x = shuffle_unit(x, out_channels, groups=groups, strides=strides,
                             group_first=not (stage_index == 2 and unit == 0), wiring=wiring,
                             name=f"stage{stage_index}_unit{unit + 1}")
            features.add(x)
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name(f"shufflenet_v1_g{groups}", alpha))
