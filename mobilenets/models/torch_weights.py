"""PyTorch checkpoints (torchvision, timm, the MobileNeXt and ShuffleNet authors' code) into our
builders, which compute the same networks when built with `padding="symmetric"`.

A checkpoint is a state_dict: `.safetensors` files are read with numpy (the `safetensors`
package), `.pth`/`.pt`/`.bin` files through PyTorch (an optional extra: `pip install torch`).
Its modules, in the order the reference code builds them (`reference_order`), are paired with our
weighted layers in the order our builders make them (`our_order`), and each tensor is laid out
as Keras wants it. Anything that does not fit stops the load with the names of both sides, before a
single weight is changed.
"""

import collections
import pathlib

import numpy as np

from mobilenets.models.layers import BN_EPSILON
from mobilenets.models.pretrained import CLASSIFIER, WeightsMismatch, to_channels

# The references' BatchNorm epsilon (torchvision's MobileNetV3 uses
# 1e-3 like ours; every other reference PyTorch's default).
TORCH_EPSILON = {"mobilenet_v3_large": 1e-3, "mobilenet_v3_small": 1e-3}
DEFAULT_TORCH_EPSILON = 1e-5
SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_BATCH_NORM = ("weight", "bias", "running_mean", "running_var")
# The named modules of the reference models whose build order is not alphabetical: the top
# level (torchvision's MobileNetV2/V3 and SqueezeNet: features, classifier; its ShuffleNetV2:
# conv1, stage2-4, conv5, fc; the official ShuffleNetV1: first_conv, features, classifier;
# MobileNeXt: features, classifier; timm's MobileNetV4: conv_stem, bn1, blocks, conv_head,
# norm_head, classifier), SqueezeNet's fire modules and timm's blocks (a conv before its
# norm; FusedIB: conv_exp, bn1, conv_pwl, bn2; UIB: dw_start, pw_exp, dw_mid, pw_proj,
# layer_scale). A safetensors file keeps no order (its names are sorted), so the order is rebuilt
# from the names.
NAMED_ORDER = ("first_conv", "conv1", "features", "stage2", "stage3", "stage4", "conv5",
               "conv_stem", "conv", "conv_exp", "bn1", "conv_pwl", "bn2", "bn", "blocks",
               "conv_head", "norm_head", "classifier", "fc", "squeeze", "expand1x1", "expand3x3",
               "dw_start", "pw_exp", "dw_mid", "pw_proj", "layer_scale")
# Modules whose children's build order depends on which children they have: timm's EfficientNet
# and MobileNetV3 (the EfficientNet head's norm is bn2, after conv_head), and their blocks,
# where bnK follows the K-th conv (the inverted residual starts with conv_pw, the
# depthwise-separable block with conv_dw), squeeze-excite between the depthwise conv and the
# projection, its reduction before its expansion; timm's MobileNetV4 attention block (norm,
# attention, layer scale), its attention (query, key, value, output) and its downsampled key
# and value (depthwise conv, norm, projection). A module whose children are exactly one of
# these sets is ordered by it, before NAMED_ORDER.
LAYOUTS = (("conv_stem", "bn1", "blocks", "conv_head", "bn2", "classifier"),
           ("conv_stem", "bn1", "blocks", "conv_head", "classifier"),
           ("conv_pw", "bn1", "conv_dw", "bn2", "conv_pwl", "bn3"),
           ("conv_pw", "bn1", "conv_dw", "bn2", "se", "conv_pwl", "bn3"),
           ("conv_dw", "bn1", "conv_pw", "bn2"),
           ("conv_dw", "bn1", "se", "conv_pw", "bn2"),
           ("conv_reduce", "conv_expand"),
           ("norm", "attn", "layer_scale"),
           ("query", "key", "value", "output"),
           ("down_conv", "norm", "proj"))


def read_state_dict(path):
    """{name: numpy array} of the checkpoint at `path`, in its order; a checkpoint that wraps
    its state_dict (`{"state_dict": ...}`, `{"model": ...}`) or was saved from DataParallel
    (`module.` prefixes) is unwrapped. WeightsMismatch if it cannot be read."""
    path = pathlib.Path(path)
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            state = load_file(str(path))
        except Exception as error:  # safetensors raises its own error types
            raise WeightsMismatch(f"{path} cannot be read as a safetensors file ({error})") \
                from None
    elif path.suffix in SUFFIXES:
        state = _torch_load(path)
    else:
        raise WeightsMismatch(f"{path}: a PyTorch checkpoint ends in {', '.join(SUFFIXES)}")
    for key in ("state_dict", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    return collections.OrderedDict(
        (name.removeprefix("module."), np.asarray(value)) for name, value in state.items()
        if not name.endswith("num_batches_tracked"))


def _torch_load(path):
    try:
        import torch
    except ImportError:
        raise WeightsMismatch(f"{path} is a PyTorch file: reading it needs PyTorch "
                              "(pip install torch), or convert it to .safetensors") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise WeightsMismatch(f"{path} cannot be read as a PyTorch checkpoint ({error})") \
            from None
    state = state.get("state_dict", state.get("model", state))
    return {name: value.numpy() for name, value in state.items() if hasattr(value, "numpy")}


def reference_order(names):
    """Sort key of the state_dict names `names` in the reference's build order: a name's module
    path with Sequential indices compared as numbers (`features.10` after `features.9`), the
    children of a module of one of the LAYOUTS as it, other names as NAMED_ORDER, then
    alphabetically."""
    children = collections.defaultdict(set)
    for name in names:
        path = name.split(".")[:-1]
        for depth, part in enumerate(path):
            children[tuple(path[:depth])].add(part)
    layouts = {frozenset(layout): layout for layout in LAYOUTS}

    def part_key(part, siblings):
        if part.isdigit():
            return 0, int(part), ""
        layout = layouts.get(frozenset(siblings))
        if layout:
            return 1, layout.index(part), ""
        if part in NAMED_ORDER:
            return 2, NAMED_ORDER.index(part), ""
        return 3, 0, part

    def key(name):
        path = name.split(".")[:-1]
        return [part_key(part, children[tuple(path[:depth])]) for depth, part in enumerate(path)]
    return key


def our_order(model):
    """Our weighted, trainable layers in the order the builders make them: depth first from
    the outputs, a layer after its inputs, a merge's inputs in call order (a block's shortcut
    branch, listed first, before its main branch, as the references build them). A fixed layer
    (ShuffleNetV1's average pool as a depthwise conv) has no counterpart."""
    from mobilenets import compat

    order, seen = [], set()
    stack = [(compat.producing_layer(tensor), False) for tensor in reversed(model.outputs)]
    while stack:
        layer, inputs_done = stack.pop()
        if inputs_done:
            order.append(layer)
            continue
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        stack.append((layer, True))
        stack += [(parent, False) for parent in reversed(compat.inbound_layers(layer))]
    return [layer for layer in order if layer.weights and layer.trainable]


def modules(state):
    """[(module name, {parameter: array})] of a state_dict, in build order."""
    grouped = collections.OrderedDict()
    for name in sorted(state, key=reference_order(state)):
        value = state[name]
        module, _, parameter = name.rpartition(".")
        grouped.setdefault(module, {})[parameter] = value
    return list(grouped.items())


def load_torch(model, state, *, bn_epsilon=DEFAULT_TORCH_EPSILON, origin="the checkpoint"):
    """Copies the state_dict `state` into `model` (one of ours with symmetric padding). A
    classifier for another number of classes stays fresh, a backbone (no classifier) leaves
    the checkpoint's head out, a 1-channel first convolution takes the sum of a 3-channel one;
    BatchNorm scales are adjusted so that our epsilon normalizes as the reference's
    `bn_epsilon` did. Returns the names of our layers left as they were; raises
    WeightsMismatch naming the first pair that does not fit."""
    ours, theirs = our_order(model), modules(state)
    plan, kept = [], []
    for index, layer in enumerate(ours):
        if index >= len(theirs):
            raise WeightsMismatch(f"{origin} does not fit {model.name}: it ends before its "
                                  f"layer {layer.name}")
        module, tensors = theirs[index]
        try:
            values = _convert(layer, tensors, bn_epsilon)
            if index == 0:
                values[0] = to_channels(values[0], tuple(layer.weights[0].shape))
        except ValueError as error:
            raise WeightsMismatch(f"{origin} does not fit {model.name}: its layer "
                                  f"{layer.name} cannot take module {module} ({error})") from None
        sizes = [int(np.prod(w.shape)) for w in layer.weights]
        if [v.size for v in values] != sizes:
            if layer.name == CLASSIFIER and index == len(ours) - 1:
                kept.append(layer.name)  # another number of classes: a fresh classifier
                continue
            raise WeightsMismatch(
                f"{origin} does not fit {model.name}: its layer {layer.name} has weights of "
                f"shapes {[tuple(w.shape) for w in layer.weights]}, module {module} "
                f"{[tuple(v.shape) for v in values]}")
        plan += zip(layer.weights, values)
    has_classifier = any(layer.name == CLASSIFIER for layer in ours)
    if len(theirs) > len(ours) and has_classifier:
        raise WeightsMismatch(f"{origin} does not fit {model.name}: its module "
                              f"{theirs[len(ours)][0]} is left over after the last layer")
    for variable, value in plan:
        variable.assign(value.reshape(variable.shape))
    return kept


def _convert(layer, tensors, bn_epsilon):
    """The Keras weights of `layer` from a PyTorch module's `tensors`."""
    from keras import layers

    if isinstance(layer, layers.BatchNormalization):
        if sorted(tensors) != sorted(_BATCH_NORM):
            raise ValueError(f"a BatchNorm module has {', '.join(_BATCH_NORM)}, it has "
                             f"{', '.join(tensors)}")
        gamma, beta, mean, variance = (tensors[key] for key in _BATCH_NORM)
        # gamma / sqrt(var + theirs) == gamma' / sqrt(var + ours)
        gamma = gamma * np.sqrt((variance + BN_EPSILON) / (variance + bn_epsilon))
        return [gamma, beta, mean, variance]
    if set(tensors) == {"gamma"}:  # timm's layer scale: our 1x1 depthwise conv
        tensors = {"weight": tensors["gamma"].reshape(-1, 1, 1, 1)}
    if "weight" not in tensors or set(tensors) - {"weight", "bias"}:
        raise ValueError(f"expected a weight (and bias), got {', '.join(tensors)}")
    weight = tensors["weight"]
    if isinstance(layer, layers.DepthwiseConv2D):  # (C * m, 1, kh, kw) -> (kh, kw, C, m)
        channels = layer.weights[0].shape[2]
        kernel = weight.reshape(channels, -1, *weight.shape[2:]).transpose(2, 3, 0, 1)
    elif weight.ndim == 4:  # (out, in / groups, kh, kw) -> (kh, kw, in / groups, out)
        kernel = weight.transpose(2, 3, 1, 0)
    elif weight.ndim == 2:  # Linear (out, in) -> (in, out), also into a 1x1 conv
        kernel = weight.T
    else:
        raise ValueError(f"a weight of shape {weight.shape}")
    values = [kernel]
    if len(layer.weights) == 2:
        # a bias the reference does not have (the official ShuffleNetV1's classifier): zero
        values.append(tensors.get("bias", np.zeros(kernel.shape[-1], kernel.dtype)))
    elif "bias" in tensors:
        raise ValueError("the module has a bias, the layer has none")
    return values
