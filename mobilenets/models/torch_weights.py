"""PyTorch checkpoints (torchvision, timm, the MobileNeXt and ShuffleNet authors' code) into our
builders, which compute the same networks when built with `padding="symmetric"`.

A checkpoint is a state_dict: `.safetensors` files are read with numpy (the `safetensors`
package), `.pth`/`.pt`/`.bin` files through PyTorch (an optional extra: `pip install torch`).
A torchvision or timm checkpoint's modules are paired with our weighted layers by their names
(`reference_names`); another (the MobileNeXt and ShuffleNetV1 authors' code) in the order the
reference code builds them (`reference_order`) with our layers in the order our builders make
them (`our_order`), each pair's kind and shapes checked. Each tensor is laid out as Keras wants
it. Anything that does not fit stops the load with the names of both sides, before a single
weight is changed.
"""

import collections
import pathlib

import numpy as np

from mobilenets.models.layers import BN_EPSILON
from mobilenets.models.pretrained import CLASSIFIER, WeightsMismatch, to_channels
from mobilenets.models.reference_names import reference_names

# The references' BatchNorm epsilon (torchvision's MobileNetV3 uses
# 1e-3 like ours; every other reference PyTorch's default).
TORCH_EPSILON = {"mobilenet_v3_large": 1e-3, "mobilenet_v3_small": 1e-3}
DEFAULT_TORCH_EPSILON = 1e-5
SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_BATCH_NORM = ("weight", "bias", "running_mean", "running_var")
# The top-level modules of the references paired by build order (the MobileNeXt and ShuffleNetV1
# authors' code) in the order they are built; inside them, Sequential indices and names sort
# as built. A safetensors file keeps no order (its names are sorted), so the order is rebuilt
# from the names.
NAMED_ORDER = ("first_conv", "features", "classifier")


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


def reference_order(name):
    """Sort key of a state_dict name in the reference's build order: its module path with
    Sequential indices compared as numbers (`features.10` after `features.9`), the NAMED_ORDER
    modules as it, other names alphabetically."""
    def part_key(part):
        if part.isdigit():
            return 0, int(part), ""
        if part in NAMED_ORDER:
            return 1, NAMED_ORDER.index(part), ""
        return 2, 0, part

    return [part_key(part) for part in name.split(".")[:-1]]


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
    for name in sorted(state, key=reference_order):
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
    by_name = dict(theirs)
    names = reference_names([layer.name for layer in ours], by_name)
    if names is None:  # another layout: build order, each pair's kind and shapes checked
        names = {layer.name: theirs[i][0] for i, layer in enumerate(ours) if i < len(theirs)}
    plan, kept, used = [], [], set()
    for index, layer in enumerate(ours):
        module = names.get(layer.name)
        if module is None:
            raise WeightsMismatch(f"{origin} does not fit {model.name}: it ends before its "
                                  f"layer {layer.name}")
        if module not in by_name:
            raise WeightsMismatch(f"{origin} does not fit {model.name}: its layer {layer.name} "
                                  f"takes module {module}, which {origin} does not have")
        used.add(module)
        try:
            values = _convert(layer, by_name[module], bn_epsilon)
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
    left_over = [module for module, _ in theirs if module not in used]
    if left_over and any(layer.name == CLASSIFIER for layer in ours):
        raise WeightsMismatch(f"{origin} does not fit {model.name}: its module "
                              f"{left_over[0]} is left over after the last layer")
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
