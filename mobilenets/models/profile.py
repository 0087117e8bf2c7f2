"""Parameter and multiply-add counts of a Keras model.

Convention (the one the MobileNet, ShuffleNet and MobileNeXt papers use): multiply-adds of
convolutions, dense layers and matrix products (attention) for one image, biases, BatchNorm,
activations, element-wise ops and pooling excluded. A k x k convolution producing an
h x w x c_out map from c_in channels in g groups costs h * w * k * k * (c_in / g) * c_out; a
depthwise one h * w * k * k * c_in * m; a product of (n x k) and (k x m) matrices n * k * m.
"""

import math

from keras import layers


def layer_macs(layer):
    """Multiply-adds of one call of `layer` (0 for layers without convolutions or matmuls).

    Pooling written as a fixed depthwise conv (ShuffleNetV1's `*_shortcut_pool`) is pooling.
    """
    if layer.name.endswith("_pool"):
        return 0
    if isinstance(layer, layers.DepthwiseConv2D):
        out = layer.output.shape
        kernel = math.prod(layer.kernel_size)
        return out[1] * out[2] * kernel * out[3]  # out channels = c_in * depth multiplier
    if isinstance(layer, layers.SeparableConv2D):
        in_channels = layer.input.shape[-1]
        out = layer.output.shape
        expanded = in_channels * layer.depth_multiplier
        depthwise = out[1] * out[2] * math.prod(layer.kernel_size) * expanded
        return depthwise + out[1] * out[2] * expanded * out[3]
    if isinstance(layer, layers.Conv2D):
        in_channels = layer.input.shape[-1]
        out = layer.output.shape
        return out[1] * out[2] * math.prod(layer.kernel_size) * in_channels // layer.groups * out[3]
    if isinstance(layer, layers.Dense):
        in_shape = layer.input.shape
        return math.prod(in_shape[1:]) * layer.units
    if isinstance(layer, layers.Dot):  # each output element sums `depth` products
        axis = layer.axes[0] if isinstance(layer.axes, (list, tuple)) else layer.axes
        depth = layer.input[0].shape[axis]
        return math.prod(layer.output.shape[1:]) * depth
    return 0


def profile(model):
    """Returns {"params", "trainable_params", "macs", "layers"} of `model` for one image.

    `params` counts every weight, BatchNorm moving statistics included (as keras.applications'
    `count_params`); `macs` follows the module's convention. Nested models are walked.
    """
    macs = sum(_walk_macs(model))
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    return {"params": int(model.count_params()), "trainable_params": int(trainable),
            "macs": int(macs), "layers": len(model.layers)}


def _walk_macs(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _walk_macs(layer)
        else:
            yield layer_macs(layer)
