"""The random weights and inputs of the golden files, drawn with numpy from a seed, so that a
golden file holds only names, shapes and the reference's outputs (a few kB), and both the maker
(with PyTorch) and the tests (without it) draw the same values."""

import numpy as np


def random_state(keys, seed):
    """{name: float32 array} for `keys` ([name, shape] in state_dict order): He-scaled
    kernels, BatchNorm scales in [0.5, 1.5], offsets, biases and means around 0, variances in
    [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in keys:
        shape = tuple(shape)
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.endswith("running_mean") or name.endswith("bias"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1:  # a BatchNorm scale
            value = rng.uniform(0.5, 1.5, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.normal(0.0, np.sqrt((2.0 if len(shape) == 4 else 1.0) / fan_in), shape)
        state[name] = value.astype(np.float32)
    return state


def random_images(shape, seed):
    """float32 NCHW images in [-1, 1] (the models' normalized input)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)
