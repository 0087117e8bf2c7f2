"""What every family shares: the common options, the named feature maps of a backbone, and the
classifier put on top of them."""

import dataclasses

import keras
from keras import layers

from mobilenets.models.layers import PADDINGS

POOLINGS = (None, "avg", "max")
OUTPUT_STRIDES = (8, 16, 32)


@dataclasses.dataclass(frozen=True)
class Common:
    """The options of `build_model` that every family takes (see docs/models.md).

    `dropout=None` means the family's reference value (keras.applications where it has one).
    `padding` is how strided layers pad: "same" (TensorFlow's, keras.applications') or
    "symmetric" (PyTorch's, for torchvision and timm weights); see `layers.PADDINGS`.
    """

    input_shape: tuple = (224, 224, 3)
    num_classes: int = 1000
    include_top: bool = True
    pooling: str | None = None
    dropout: float | None = None
    classifier_activation: str | None = "softmax"
    include_preprocessing: bool = False
    padding: str = "same"

    def __post_init__(self):
        shape = tuple(self.input_shape) if isinstance(self.input_shape, (list, tuple)) else None
        if (shape is None or len(shape) != 3
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape)):
            raise ValueError(
                f"input_shape must be (height, width, channels), got {self.input_shape!r}")
        if shape[2] not in (1, 3):
            raise ValueError(f"input_shape channels must be 1 or 3, got {shape[2]}")
        object.__setattr__(self, "input_shape", shape)
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if self.padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {self.padding!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.dropout is not None and not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.classifier_activation is not None:
            try:
                keras.activations.get(self.classifier_activation)
            except ValueError as error:
                raise ValueError(f"classifier_activation: {error}") from None

    def inputs(self, min_size=32):
        """Returns (input tensor, tensor to build on), rescaling [0, 255] to [-1, 1] if asked."""
        height, width, _ = self.input_shape
        if height < min_size or width < min_size:
            raise ValueError(
                f"input_shape {self.input_shape} is too small: this family needs at least "
                f"{min_size}x{min_size} pixels")
        inputs = keras.Input(shape=self.input_shape, name="input")
        x = inputs
        if self.include_preprocessing:
            x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(x)
        return inputs, x

    def model_name(self, family, width):
        return f"{family}_{width:g}_{self.input_shape[0]}"


class FeatureMaps:
    """The named feature maps of a backbone, recorded while a family builds it.

    `stride_<s>` is the last map at nominal stride s (the stride of the undilated network: the
    key stays the same under `output_stride`); `expansion_to_<s>` is the expanded input
    (1x1 expand + activation) of the block that strides down to s, still at the stride before
    it (SSDLite's first map is `expansion_to_32`); `last` is the map the classifier pools.

    With `output_stride` 16 or 8, strides past it become dilation, as TF-slim (and DeepLab on
    it) does: the layer that would stride keeps the current rate and runs with stride 1, and the
    layers after it use the rate multiplied by that stride.
    """

    def __init__(self, output_stride=32):
        if output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got "
                             f"{output_stride!r}")
        self.output_stride = output_stride
        self.nominal = self.actual = self.rate = 1
        self.maps = {}

    def stride(self, strides):
        """(strides, dilation rate) for a layer that strides by `strides` in the undilated
        network; call it once per such layer, in build order."""
        self.nominal *= strides
        if strides == 1:
            return 1, self.rate
        if self.actual >= self.output_stride:
            rate = self.rate
            self.rate *= strides
            return 1, rate
        self.actual *= strides
        return strides, 1

    def add(self, x, name=None):
        """Records `x` as `name` (default `stride_<nominal stride>`); returns `x`."""
        self.maps[name or f"stride_{self.nominal}"] = x
        return x


@dataclasses.dataclass
class Network:
    """What a family builder returns: its input, its named feature maps (`FeatureMaps.maps`,
    `last` included) and what its classifier needs."""

    inputs: object
    features: dict
    name: str
    default_dropout: float = 0.0
    pre_logits: object = None  # pooled features -> the classifier's input (top only)
    # whether a pooled model without its classifier keeps `pre_logits` (timm's MobileNetV4
    # with num_classes=0 keeps its 1280-channel head; keras.applications' MobileNetV3 drops it)
    pooled_keeps_pre_logits: bool = False
    top: object = None  # (common, last map) -> output, replacing pooling and classifier

    @property
    def last(self):
        return self.features["last"]


def classifier_model(common, network):
    """The classification model of a `Network`: pooling and, with `include_top`, the
    classifier (dropout -> Dense `logits` -> `predictions` activation)."""
    x = network.last
    if common.include_top and network.top is not None:
        return keras.Model(network.inputs, network.top(common, x), name=network.name)
    if common.include_top or common.pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif common.pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    keeps = common.include_top or (common.pooling and network.pooled_keeps_pre_logits)
    if network.pre_logits is not None and keeps:
        x = network.pre_logits(x)
    if common.include_top:
        rate = network.default_dropout if common.dropout is None else common.dropout
        if rate > 0:
            x = layers.Dropout(rate, name="dropout")(x)
        x = layers.Dense(common.num_classes, name="logits")(x)
        if common.classifier_activation is not None:  # float32 under mixed precision too
            x = layers.Activation(common.classifier_activation, name="predictions",
                                  dtype="float32")(x)
    return keras.Model(network.inputs, x, name=network.name)


def backbone_model(network):
    """The backbone of a `Network`: a model whose outputs are its named feature maps."""
    return keras.Model(network.inputs, dict(network.features), name=f"{network.name}_backbone")
