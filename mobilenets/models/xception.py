"""Xception (Chollet 2017, arXiv 1610.02357): depthwise separable convs with residual links."""

import dataclasses

from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import activation, batch_norm, conv_bn, make_divisible, max_pool


@dataclasses.dataclass(frozen=True)
class Block:
    """One residual block of the paper's Figure 5: ReLU -> separable conv -> BN per width."""

    widths: tuple  # output channels of each separable conv
    downsample: bool  # 3x3/2 max pool, shortcut a strided 1x1 conv + BN; else identity shortcut
    relu_first: bool = True  # the first block follows the stem's ReLU and starts with the conv


# Figure 5, input 299x299x3; the stem is two valid 3x3 convs (32 with stride 2, then 64).
BLOCKS = (
    Block(widths=(128, 128), downsample=True, relu_first=False),  # entry flow, 147x147x64
    Block(widths=(256, 256), downsample=True),  # 74x74x128
    Block(widths=(728, 728), downsample=True),  # 37x37x256
    *[Block(widths=(728, 728, 728), downsample=False)] * 8,  # middle flow, 19x19x728
    Block(widths=(728, 1024), downsample=True),  # exit flow, 19x19x728
)
EXIT_WIDTHS = (1536, 2048)  # two separable convs + BN + ReLU after the last block, 10x10
MIN_SIZE = 71  # the valid-padded stem needs 71 px to leave a 3x3 map for the exit flow


def separable_conv_bn(x, filters, *, name):
    """3x3 depthwise (linear, no BN) -> 1x1 pointwise -> BN: Keras' SeparableConv2D + BN as two
    plain layers, which TFLite and tfmot handle directly."""
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    return batch_norm(x, name=f"{name}_bn")


def build(common, *, alpha=1.0):
    """Xception; `alpha` scales every width (rounded to multiples of 8)."""
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")

    def width(c):
        return make_divisible(c * alpha)

    features = FeatureMaps()
    inputs, x = common.inputs(min_size=MIN_SIZE)
    features.stride(2)
    x = conv_bn(x, width(32), 3, strides=2, padding="valid", activation_kind="relu",
                name="stem1")
    x = features.add(conv_bn(x, width(64), 3, padding="valid", activation_kind="relu",
                             name="stem2"))
    for index, block in enumerate(BLOCKS, start=1):
        prefix = f"block{index}"
        if block.downsample:
            shortcut = conv_bn(x, width(block.widths[-1]), 1, strides=2,
                               name=f"{prefix}_shortcut")
        else:
            shortcut = x
        for j, w in enumerate(block.widths, start=1):
            if j > 1 or block.relu_first:
                x = activation(x, "relu", name=f"{prefix}_sep{j}")
            x = separable_conv_bn(x, width(w), name=f"{prefix}_sep{j}")
        if block.downsample:
            features.stride(2)
            x = max_pool(x, name=f"{prefix}_pool")
        x = features.add(layers.Add(name=f"{prefix}_add")([x, shortcut]))
    for j, w in enumerate(EXIT_WIDTHS, start=1):
        x = separable_conv_bn(x, width(w), name=f"exit_sep{j}")
        x = activation(x, "relu", name=f"exit_sep{j}")
    features.add(x)
    features.add(x, "last")
    return Network(inputs, features.maps, common.model_name("xception", alpha))
