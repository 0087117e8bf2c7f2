"""Options every family shares: the input, optional preprocessing, pooling and the classifier."""

import dataclasses

import keras
from keras import layers

POOLINGS = (None, "avg", "max")


@dataclasses.dataclass(frozen=True)
class Common:
    """The options of `build_model` that every family takes (see ARCHITECTURE.md).

    `dropout=None` means the family's reference value (keras.applications where it has one).
    """

    input_shape: tuple = (224, 224, 3)
    num_classes: int = 1000
    include_top: bool = True
    pooling: str | None = None
    dropout: float | None = None
    classifier_activation: str | None = "softmax"
    include_preprocessing: bool = False

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

    def pool(self, x):
        """Global pooling of the feature map for the classifier (include_top) or `pooling`."""
        if self.include_top or self.pooling == "avg":
            return layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if self.pooling == "max":
            return layers.GlobalMaxPooling2D(name="max_pool")(x)
        return x

    def classifier(self, x, default_dropout):
        """Dropout -> Dense `logits` -> `predictions` activation (none for logits output)."""
        rate = default_dropout if self.dropout is None else self.dropout
        if rate > 0:
            x = layers.Dropout(rate, name="dropout")(x)
        x = layers.Dense(self.num_classes, name="logits")(x)
        if self.classifier_activation is not None:  # float32 under mixed precision too
            x = layers.Activation(self.classifier_activation, name="predictions",
                                  dtype="float32")(x)
        return x

    def finish(self, inputs, features, *, name, default_dropout=0.0, pre_logits=None):
        """Pools the final feature map, adds the classifier if `include_top`, makes the model.

        `pre_logits`, if given, maps the pooled features to the classifier's input (top only).
        """
        x = self.pool(features)
        if self.include_top:
            if pre_logits is not None:
                x = pre_logits(x)
            x = self.classifier(x, default_dropout)
        return keras.Model(inputs, x, name=name)

    def model_name(self, family, width):
        return f"{family}_{width:g}_{self.input_shape[0]}"
