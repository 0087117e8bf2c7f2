"""SqueezeNet 1.0 and 1.1 (Iandola et al. 2016, arXiv 1602.07360): fire modules."""

import dataclasses

import keras
from keras import layers

from mobilenets.models.common import FeatureMaps, Network
from mobilenets.models.layers import activation, batch_norm, make_divisible


@dataclasses.dataclass(frozen=True)
class Fire:
    """A fire module: 1x1 squeeze conv, then parallel 1x1 and 3x3 expand convs, concatenated."""

    squeeze: int
    expand: int  # channels of each expand conv; the module outputs 2 * expand


POOL = "pool"  # a 3x3/2 max pool, with Caffe's ceil rounding as in the paper's models

# Table 1 (1.0) and the SqueezeNet v1.1 release; fire modules are numbered fire2..fire9.
VERSIONS = {
    "1.0": dict(stem=(96, 7), layers=(POOL, Fire(16, 64), Fire(16, 64), Fire(32, 128), POOL,
                                      Fire(32, 128), Fire(48, 192), Fire(48, 192), Fire(64, 256),
                                      POOL, Fire(64, 256))),
    "1.1": dict(stem=(64, 3), layers=(POOL, Fire(16, 64), Fire(16, 64), POOL, Fire(32, 128),
                                      Fire(32, 128), POOL, Fire(48, 192), Fire(48, 192),
                                      Fire(64, 256), Fire(64, 256))),
}
BYPASSES = ("none", "simple", "complex")


def conv(x, filters, kernel_size, *, name, strides=1, padding="same", batch_normalization):
    """Conv + ReLU (with bias, the paper's form) or conv + BN + ReLU (`batch_normalization`).

    He initialization, as torchvision's SqueezeNet: without BatchNorm, Keras' default Glorot
    initialization halves the signal at every layer and the logits start at ~1e-4.
    """
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                      use_bias=not batch_normalization, kernel_initializer="he_uniform",
                      name=f"{name}_conv")(x)
    if batch_normalization:
        x = batch_norm(x, name=f"{name}_bn")
    return activation(x, "relu", name=name)


def fire(x, module, *, name, batch_normalization):
    """1x1 squeeze + ReLU -> [1x1 expand + ReLU, 3x3 expand + ReLU] -> concat."""
    x = conv(x, module.squeeze, 1, name=f"{name}_squeeze", batch_normalization=batch_normalization)
    left = conv(x, module.expand, 1, name=f"{name}_expand1x1",
                batch_normalization=batch_normalization)
    right = conv(x, module.expand, 3, name=f"{name}_expand3x3",
                 batch_normalization=batch_normalization)
    return layers.Concatenate(name=f"{name}_concat")([left, right])


def ceil_max_pool(x, *, name):
    """3x3/2 max pool that rounds the output size up, as Caffe and torchvision's SqueezeNet do.

    Inputs are ReLU outputs (>= 0), so zero padding on the bottom/right never wins the max.
    """
    height, width = x.shape[1:3]
    pad = [(2 - (size - 3) % 2) % 2 for size in (height, width)]
    if any(pad):
        x = layers.ZeroPadding2D(((0, pad[0]), (0, pad[1])), name=f"{name}_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name=name)(x)


def build(common, *, alpha=1.0, version="1.0", bypass="none", batch_norm=False):
    """SqueezeNet `version` "1.0" or "1.1"; `bypass` "simple" adds identity shortcuts around
    the fire modules whose input and output widths match (fire3, 5, 7, 9), "complex" adds 1x1
    conv shortcuts around the others too. Like the paper, no BatchNorm unless `batch_norm`."""
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {sorted(VERSIONS)}, got {version!r}")
    if bypass not in BYPASSES:
        raise ValueError(f"bypass must be one of {BYPASSES}, got {bypass!r}")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be true or false, got {batch_norm!r}")
    spec = VERSIONS[version]
    stem_filters, stem_kernel = spec["stem"]
    features = FeatureMaps()
    inputs, x = common.inputs()
    features.stride(2)
    x = features.add(conv(x, make_divisible(stem_filters * alpha), stem_kernel, strides=2,
                          padding="valid", name="stem", batch_normalization=batch_norm))
    fire_index, pool_index = 2, 1
    for item in spec["layers"]:
        if item == POOL:
            features.stride(2)
            x = features.add(ceil_max_pool(x, name=f"pool{pool_index}"))
            pool_index += 1
            continue
        name = f"fire{fire_index}"
        module = Fire(make_divisible(item.squeeze * alpha), make_divisible(item.expand * alpha))
        y = fire(x, module, name=name, batch_normalization=batch_norm)
        if bypass != "none" and x.shape[-1] == y.shape[-1]:
            y = layers.Add(name=f"{name}_bypass")([x, y])
        elif bypass == "complex":
            shortcut = layers.Conv2D(y.shape[-1], 1, kernel_initializer="he_uniform",
                                     name=f"{name}_bypass_conv")(x)
            y = layers.Add(name=f"{name}_bypass")([shortcut, y])
        x = features.add(y)
        fire_index += 1
    features.add(x, "last")
    return Network(inputs, features.maps, _name(common, version, alpha), top=conv_classifier)


def conv_classifier(common, x):
    """SqueezeNet's classifier: dropout -> 1x1 conv + ReLU -> global average pool (no dense)."""
    rate = 0.5 if common.dropout is None else common.dropout
    if rate > 0:
        x = layers.Dropout(rate, name="dropout")(x)
    x = layers.Conv2D(common.num_classes, 1, name="logits",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=0.01))(x)
    x = layers.ReLU(name="logits_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if common.classifier_activation is not None:
        x = layers.Activation(common.classifier_activation, name="predictions")(x)
    return x


def _name(common, version, alpha):
    return common.model_name(f"squeezenet{version.replace('.', '_')}", alpha)
