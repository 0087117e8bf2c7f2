"""Pretrained weights: ImageNet starts from keras.applications.

`model.weights: imagenet` builds the keras.applications twin of the model with
`weights="imagenet"`, so Keras' own code downloads the file (once, into its cache,
`~/.keras/models` or `$KERAS_HOME/models`) and checks its hash, as a user of keras.applications
gets it; a path to one of those `.h5` files (downloaded by hand for a machine without internet)
goes the same way. The twin's weights are then copied into ours layer by layer: our builders are
keras.applications' networks op for op (tests/models/test_reference.py), in the same layer
order.
"""

import re

import numpy as np

# family -> (keras.applications constructor, the family options it takes, its classifier layer)
KERAS_APPLICATIONS = {
    "mobilenet_v1": ("MobileNet", ("alpha", "depth_multiplier"), "conv_preds"),
    "mobilenet_v2": ("MobileNetV2", ("alpha",), "predictions"),
    "mobilenet_v3_large": ("MobileNetV3Large", ("alpha", "minimalistic"), "Logits"),
    "mobilenet_v3_small": ("MobileNetV3Small", ("alpha", "minimalistic"), "Logits"),
    "xception": ("Xception", (), "predictions"),
}
CLASSIFIER = "logits"  # the name of our classifier layer in every family


class WeightsMismatch(ValueError):
    """Weights that do not fit the model; the message names the first layer that does not."""


def keras_applications_twin(name, options, *, include_top, weights):
    """keras.applications' model of family `name` with our family `options` (alpha, ...), at its
    default input size, holding `weights` ("imagenet": downloaded and cached by Keras; or an
    .h5 path). ValueError for a family or option keras.applications has no weights for."""
    import keras

    if name not in KERAS_APPLICATIONS:
        raise ValueError(f"keras.applications has no ImageNet weights for {name}; it has them "
                         f"for {', '.join(KERAS_APPLICATIONS)}")
    constructor, keys, _ = KERAS_APPLICATIONS[name]
    unsupported = [key for key in options if key not in keys]
    if unsupported:
        raise ValueError(f"keras.applications' {constructor} has no option "
                         f"{', '.join(unsupported)}: its weights do not fit that model")
    kwargs = dict(options)
    if name.startswith("mobilenet_v3"):
        kwargs["include_preprocessing"] = False  # ours is our own Rescaling layer
    return getattr(keras.applications, constructor)(include_top=include_top, weights=weights,
                                                    **kwargs)


def load_keras_applications(model, name, options, weights="imagenet"):
    """Loads keras.applications' `weights` ("imagenet" or the path of one of its .h5 files) of
    family `name` (with our family `options`) into `model`, one of ours built with "same"
    padding. A model with another number of classes keeps its fresh classifier; a 1-channel
    model gets the first convolution summed over the colour channels (exactly the network on
    a gray image repeated in R, G and B). Returns the names of the layers left as they were.
    Raises WeightsMismatch naming the first layer that does not fit."""
    include_top = any(layer.name == CLASSIFIER for layer in model.layers)
    if weights != "imagenet" and include_top:
        include_top = _file_has_layer(weights, KERAS_APPLICATIONS[name][2])
    twin = keras_applications_twin(name, options, include_top=include_top, weights=weights)
    return transfer(twin, model, origin=f"keras.applications' {twin.name} weights ({weights})")


def failed_download(error):
    """(URL, reason) of the file whose download failed, if `error` is the bare Exception that
    Keras' `get_file` raises for it ("URL fetch failure on <url>: <code> -- <reason>"); else
    None."""
    found = re.match(r"URL fetch failure on (\S+?): (?:\S+ -- )?(.*)", str(error), re.DOTALL)
    return (found.group(1), found.group(2).strip()) if found else None


def transfer(source, target, *, origin="the weights"):
    """Copies `source`'s weights into `target`, pairing their weights in layer order (so that a
    SeparableConv2D's two kernels meet a depthwise and a 1x1 conv); nothing changes if any pair
    does not fit. A classifier (the target's last layer, `logits`) that the weights lack or
    have for another number of classes stays as it is; a 1-channel first convolution takes the
    sum of a 3-channel one. A target without a classifier (a task's backbone part) takes the
    weights of its own layers: those past its end, which its task does not use (DeepLab's
    MobileNetV2 ends before the last 1x1 conv), are left out. Returns the names of the target
    layers left as they were."""
    ours = [(layer.name, w) for layer in target.layers for w in layer.weights]
    theirs = [(layer.name, w.numpy()) for layer in source.layers for w in layer.weights]
    split = len(ours)
    while split and ours[split - 1][0] == CLASSIFIER:
        split -= 1
    body, head = ours[:split], ours[split:]
    if len(theirs) < len(body):
        raise WeightsMismatch(f"{origin} do not fit {target.name}: they end before its layer "
                              f"{body[len(theirs)][0]}")
    rest = theirs[len(body):] if head else []
    if len(rest) > len(head):
        raise WeightsMismatch(f"{origin} do not fit {target.name}: their layer "
                              f"{rest[len(head)][0]} is left over after its last layer")
    plan = []
    for index, ((name, variable), (their_name, value)) in enumerate(zip(body, theirs)):
        if index == 0:
            value = to_channels(value, tuple(variable.shape))
        if value.size != int(np.prod(variable.shape)):
            raise WeightsMismatch(
                f"{origin} do not fit {target.name}: its layer {name} has a weight of shape "
                f"{tuple(variable.shape)}, the weights' layer {their_name} {value.shape}")
        plan.append((variable, value))
    kept = []
    if len(rest) == len(head) and all(value.size == int(np.prod(variable.shape))
                                      for (_, variable), (_, value) in zip(head, rest)):
        plan += [(variable, value) for (_, variable), (_, value) in zip(head, rest)]
    elif head:
        kept.append(CLASSIFIER)  # lacking or for another number of classes: a fresh one
    for variable, value in plan:
        variable.assign(value.reshape(variable.shape))  # a 1x1 conv kernel into a Dense
    return kept


def to_channels(value, shape):
    """The first convolution's kernel summed over its input channels when the model takes one
    channel and the weights three."""
    if value.ndim == 4 and value.shape[2] == 3 and len(shape) == 4 and shape[2] == 1:
        return value.sum(axis=2, keepdims=True)
    return value


def _file_has_layer(path, name):
    """Whether keras.applications' .h5 weights file `path` has layer `name` (its `_no_top`
    files have no classifier). WeightsMismatch if it is not such a file."""
    import h5py

    try:
        with h5py.File(path, "r") as file:
            names = file.attrs.get("layer_names")
            if names is None:
                raise WeightsMismatch(f"{path} is not a keras.applications weights file "
                                      "(no layer_names)")
            return name in [n.decode() if isinstance(n, bytes) else n for n in names]
    except OSError as error:
        raise WeightsMismatch(f"{path} cannot be read as an HDF5 weights file ({error})") \
            from None
