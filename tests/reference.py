"""keras.applications twins of our builders, for counts and op-for-op comparisons."""

import numpy as np
from keras import applications, layers

# (our name, our options, keras.applications constructor, its options)
KERAS_TWINS = [
    *[("mobilenet_v1", {"alpha": a}, applications.MobileNet, {"alpha": a})
      for a in (1.0, 0.75, 0.5, 0.25)],
    *[("mobilenet_v2", {"alpha": a}, applications.MobileNetV2, {"alpha": a})
      for a in (1.4, 1.3, 1.0, 0.75, 0.5, 0.35)],
    *[(f"mobilenet_v3_{size}", options, constructor, dict(options, include_preprocessing=False))
      for size, constructor in (("large", applications.MobileNetV3Large),
                                ("small", applications.MobileNetV3Small))
      for options in ({"alpha": 1.0}, {"alpha": 0.75}, {"minimalistic": True})],
    ("xception", {}, applications.Xception, {}),
]


def twin_id(twin):
    name, options = twin[0], twin[1]
    return name + "".join(f"-{k}={v}" for k, v in options.items())


def weighted(model):
    """The weights of `model` in layer order (a SeparableConv2D gives depthwise, pointwise)."""
    return [w for layer in model.layers for w in layer.weights]


def copy_weights(source, target):
    """Copies `source`'s weights into `target` in layer order; a 1x1 conv kernel may land in a
    Dense kernel of the same size. Fails if the two differ in any layer's weight sizes."""
    src, dst = weighted(source), weighted(target)
    assert len(src) == len(dst), f"{len(src)} weights vs {len(dst)}"
    for a, b in zip(src, dst):
        value = a.numpy()
        assert value.size == int(np.prod(b.shape)), f"{a.path} {value.shape} vs {b.path} {b.shape}"
        b.assign(value.reshape(b.shape))


def randomize(model, rng, images):
    """Draws every weight at random (He-scaled kernels, non-trivial BatchNorm scales and
    offsets), then sets the BatchNorm moving statistics to those of `images`, so that inference
    normalizes: the signal neither saturates nor dies through the depth of the network."""
    for w in model.weights:
        shape = tuple(w.shape)
        if w.path.endswith("gamma"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) >= 2:
            depthwise = "depthwise" in w.path
            fan_in = int(np.prod(shape[:2] if depthwise else shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        w.assign(value.astype("float32"))
    set_batch_norm_statistics(model, images)


def set_batch_norm_statistics(model, images):
    """Gives BatchNorm the moving statistics of `images`, as training would: at their
    initial identity, a random model's int8 ADDs (MobileNetV3's hard-swish) get input/output
    scale ratios outside the range XNNPACK's int8 ADD accepts, which trained models do not
    have."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.0  # moving statistics := this batch's statistics
    model(images, training=True)
