"""RGB input for models trained on grayscale: what Android's clients (MediaPipe Tasks, the TFLite
Task Library) give a model is an RGB camera image, and they refuse a 1-channel input tensor.

A 1-channel model's files take RGB pixels and compute the model on their luma. In a Keras 3
model the conversion to gray is folded into the first convolution (its kernel repeated over the
three channels, weighted by the luma coefficients): exact, and no extra op in the file.
"""

import keras
import numpy as np

# ITU-R BT.601 luma, tf.image.rgb_to_grayscale's weights (what training converts RGB images
# with), scaled to sum to 1 so that a gray pixel (R = G = B) keeps its value exactly.
_WEIGHTS = np.array([0.2989, 0.5870, 0.1140])
LUMA = _WEIGHTS / _WEIGHTS.sum()


def _channel_wise(layer):
    """Whether `layer` acts on every channel alike, so that the conversion to gray may pass
    through it: a scalar Rescaling, or zero padding (symmetric padding's, before a strided
    first convolution: zero in every channel is zero luma)."""
    if isinstance(layer, keras.layers.ZeroPadding2D):
        return True
    return (isinstance(layer, keras.layers.Rescaling) and np.ndim(layer.scale) == 0
            and np.ndim(layer.offset) == 0)


def first_conv(model):
    """The convolution that the conversion to gray folds into: the first layer after the input
    and any channel-wise Rescaling or zero padding. ValueError if that layer is not a full
    convolution."""
    tensor = model.inputs[0]
    for layer in model.layers[1:]:
        if layer.input is not tensor:
            continue
        if _channel_wise(layer):
            tensor = layer.output
            continue
        if type(layer) is keras.layers.Conv2D and layer.groups == 1:
            return layer
        raise ValueError(f"{model.name} cannot take RGB input: its first layer after the "
                         f"input, {layer.name}, is not a convolution to fold the gray "
                         "conversion into (set export.rgb_input: false)")
    raise ValueError(f"{model.name} has no convolution to fold the gray conversion into")


def rgb_model(model):
    """`model` (1 input channel) as a model taking RGB pixels: the same layers and weights but
    for the first convolution, whose kernel takes the three channels weighted by `LUMA`, so
    that it computes `model` on the image's luma."""
    conv = first_conv(model)
    height, width, _ = model.input_shape[1:]
    inputs = keras.Input((height, width, 3), name=model.layers[0].name)
    copies = {}

    def clone(layer):
        if layer is not conv:
            return layer  # shared: the same weights
        copies["conv"] = type(layer).from_config(layer.get_config())
        return copies["conv"]

    rgb = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone)
    kernel, *rest = conv.get_weights()
    folded = np.concatenate([kernel * weight for weight in LUMA], axis=2).astype(kernel.dtype)
    copies["conv"].set_weights([folded, *rest])
    return rgb
