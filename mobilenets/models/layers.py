"""Building blocks shared by the model families.

Every block is a plain function from a tensor to a tensor with keyword-only arguments and a
required `name` prefix. Blocks use Keras' built-in layers only (plus `ChannelSplit`, below): no
`Lambda` and no raw arithmetic on KerasTensors, so that tfmot can annotate every layer and the QAT
stage can rebuild the model in tf_keras from layer configs.
"""

import contextlib
import contextvars

import keras
from keras import layers

BN_EPSILON = 1e-3

# How a strided layer pads: "same" as TensorFlow (and TF-slim, keras.applications): the extra
# row and column of an even-sized input go at the bottom and right; "symmetric" as PyTorch
# (torchvision, timm, the MobileNeXt and ShuffleNet authors' code): k // 2 zeros on every side.
# The two agree wherever a strided layer sees an odd size; stride-1 layers pad alike in both.
PADDINGS = ("same", "symmetric")
_padding = contextvars.ContextVar("padding", default="same")


@contextlib.contextmanager
def padding_style(style):
    """Builds the strided layers made inside the block with `style` padding (see PADDINGS).

    A context rather than an argument of every block: the choice concerns only the few strided
    layers, and the builders stay written as their papers' tables.
    """
    if style not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {style!r}")
    token = _padding.set(style)
    try:
        yield
    finally:
        _padding.reset(token)


def pad_for_stride(x, kernel_size, strides, *, name, dilation=1):
    """Returns (x, padding) for a conv or pool of `kernel_size` and `strides` that pads "same":
    with symmetric padding and a stride above 1, `x` zero-padded by k // 2 on every side
    (a `{name}_pad` ZeroPadding2D) and "valid"; otherwise `x` and "same"."""
    pad = dilation * (kernel_size - 1) // 2
    if strides == 1 or pad == 0 or _padding.get() == "same":
        return x, "same"
    return layers.ZeroPadding2D(pad, name=f"{name}_pad")(x), "valid"


def max_pool(x, *, name):
    """3x3 max pool with stride 2, padded as the current padding style.

    Symmetric padding must pad with -inf, as PyTorch's MaxPool2d(3, 2, padding=1) does: zeros
    would win the max over negative inputs, and Keras pads with -inf only in "same" mode, which
    is symmetric only on odd sizes. Along an even axis the pool takes a copy of the first row
    (column) in front instead, as neutral for a max as -inf, and along an odd one also a copy
    of the last behind; then it pools without padding: exactly PyTorch's windows, in layers
    (slices, concatenations) that XNNPACK runs in float and int8.
    """
    height, width = x.shape[1:3]
    if _padding.get() == "same" or (height % 2 and width % 2):
        return layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)
    for axis, size in ((1, height), (2, width)):
        x = _replicate_edges(x, axis, after=size % 2 == 1, name=f"{name}_edge{axis}")
    return layers.MaxPooling2D(3, strides=2, name=name)(x)


def _replicate_edges(x, axis, *, after, name):
    """`x` with a copy of its first row (axis 1) or column (axis 2) in front and, if `after`,
    of its last behind."""
    size = x.shape[axis]

    def crop(keep_first):
        cut = (0, size - 1) if keep_first else (size - 1, 0)
        cropping = (cut, (0, 0)) if axis == 1 else ((0, 0), cut)
        return layers.Cropping2D(cropping, name=f"{name}_{'first' if keep_first else 'last'}")(x)

    parts = [crop(True), x] + ([crop(False)] if after else [])
    return layers.Concatenate(axis=axis, name=name)(parts)


def make_divisible(value, divisor=8, min_value=None):
    """Rounds a channel count to the nearest multiple of `divisor` (TF-slim's rule).

    The result is at least `min_value` (default `divisor`) and never more than 10% below `value`.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@keras.saving.register_keras_serializable(package="mobilenets")
class ChannelSplit(layers.Layer):
    """Splits a tensor along its last axis into `sizes` parts (a list of tensors).

    Keras has no built-in split layer; ShuffleNetV2's channel split and MobileNeXt's partial
    identity need one. It converts to a single TFLite SPLIT / SPLIT_V op.
    """

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]

    def call(self, inputs):
        return keras.ops.split(inputs, _split_indices(self.sizes), axis=-1)

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


def _split_indices(sizes):
    if len(set(sizes)) == 1:
        return len(sizes)  # equal parts: one SPLIT op
    indices, total = [], 0
    for size in sizes[:-1]:
        total += size
        indices.append(total)
    return indices


def hard_sigmoid(x, *, name):
    """relu6(x + 3) / 6 as built-in layers; the converter folds the shift into the previous conv."""
    x = layers.Rescaling(1.0, offset=3.0, name=f"{name}_shift")(x)
    x = layers.ReLU(6.0, name=f"{name}_relu6")(x)
    return layers.Rescaling(1.0 / 6.0, name=name)(x)


def hard_swish(x, *, name):
    """x * relu6(x + 3) / 6, computed as (x / 6) * relu6(x + 3).

    Written in this order on purpose: the TFLite converter fuses x * relu6(x + 3) / 6 into a
    HARD_SWISH op, which XNNPACK runs in float but not in int8, so an int8 MobileNetV3 would fall
    out of the delegate at every activation (~20 partitions). This form converts to ADD (with a
    fused RELU6), MUL, MUL, which XNNPACK runs in both float and int8.
    """
    gate = layers.Rescaling(1.0, offset=3.0, name=f"{name}_shift")(x)
    gate = layers.ReLU(6.0, name=f"{name}_relu6")(gate)
    scaled = layers.Rescaling(1.0 / 6.0, name=f"{name}_scale")(x)
    return layers.Multiply(name=name)([scaled, gate])


def activation(x, kind, *, name):
    """Applies `kind` ("relu", "relu6", "hard_swish", "gelu" or None) as named layers."""
    if kind is None:
        return x
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    if kind == "relu6":
        return layers.ReLU(6.0, name=f"{name}_relu")(x)
    if kind == "hard_swish":
        return hard_swish(x, name=f"{name}_hswish")
    if kind == "gelu":  # the exact (erf) form, as PyTorch's nn.GELU
        return layers.Activation("gelu", name=f"{name}_gelu")(x)
    raise ValueError(f"unknown activation {kind!r}")


@keras.saving.register_keras_serializable(package="mobilenets")
class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' BatchNormalization whose training pass runs TensorFlow's fused kernel.

    Keras 3 computes a training batch's moments and its normalization as separate passes over
    memory, which made BatchNorm half of MobileNetV2's forward time in training;
    `tf.raw_ops.FusedBatchNormV3` (what tf_keras runs) does both in one kernel. Everything else
    is Keras' own: inference (so the TFLite converter still folds it into the convolutions),
    serialization, and the cases the kernel does not cover (synchronized statistics, masks,
    renorm, other backends), which take Keras' path. The moving statistics are updated as Keras
    updates them, with the batch's biased variance: the kernel returns the unbiased one (for its
    own moving averages), so it is scaled back by (n - 1) / n.

    A registered subclass rather than a patch of Keras' class: the builders choose it
    explicitly, keras.applications' models stay as Keras makes them, and a saved model names
    the layer it was trained with.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable) or not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, tf.float32)  # float32 statistics under mixed precision, as Keras
        channels = x.shape[-1]
        scale = self.gamma if self.scale else tf.ones([channels])
        offset = self.beta if self.center else tf.zeros([channels])
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=tf.cast(scale, tf.float32), offset=tf.cast(offset, tf.float32),
            mean=tf.zeros([0]), variance=tf.zeros([0]), epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (tf.maximum(count - 1.0, 1.0) / count)
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum
                                    + variance * (1.0 - momentum))
        return tf.cast(outputs, self.compute_dtype)

    def _fusable(self, inputs, mask):
        return (keras.backend.backend() == "tensorflow" and not self.synchronized
                and not getattr(self, "renorm", False) and mask is None
                and len(inputs.shape) == 4 and self.axis in (-1, 3))


def batch_norm(x, *, name, momentum=0.99):
    return FusedBatchNormalization(epsilon=BN_EPSILON, momentum=momentum, name=name)(x)


def conv_bn(x, filters, kernel_size=1, *, name, strides=1, activation_kind=None, groups=1,
            padding="same", bn_momentum=0.99):
    """k x k conv (no bias) + BN + optional activation; layers `{name}_conv`, `{name}_bn`."""
    if padding == "same":
        x, padding = pad_for_stride(x, kernel_size, strides, name=name)
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                      use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(x, name=f"{name}_bn", momentum=bn_momentum)
    return activation(x, activation_kind, name=name)


def depthwise_bn(x, kernel_size=3, *, name, strides=1, activation_kind=None, depth_multiplier=1,
                 bn_momentum=0.99, dilation=1):
    """k x k depthwise conv (no bias) + BN + optional activation; `{name}_conv`, `{name}_bn`."""
    x, padding = pad_for_stride(x, kernel_size, strides, dilation=dilation, name=name)
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding,
                               depth_multiplier=depth_multiplier, dilation_rate=dilation,
                               use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(x, name=f"{name}_bn", momentum=bn_momentum)
    return activation(x, activation_kind, name=name)


def depthwise_separable(x, filters, *, name, strides=1, depth_multiplier=1, bn_momentum=0.99,
                        dilation=1):
    """3x3 depthwise + BN + ReLU6 -> 1x1 pointwise + BN + ReLU6 (MobileNetV1)."""
    x = depthwise_bn(x, 3, strides=strides, depth_multiplier=depth_multiplier,
                     activation_kind="relu6", bn_momentum=bn_momentum, dilation=dilation,
                     name=f"{name}_dw")
    return conv_bn(x, filters, 1, activation_kind="relu6", bn_momentum=bn_momentum,
                   name=f"{name}_pw")


def squeeze_excite(x, se_channels, *, name):
    """Global average pool -> 1x1 conv + ReLU -> 1x1 conv + hard-sigmoid -> scale the input."""
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(se_channels, 1, name=f"{name}_reduce_conv")(s)
    s = layers.ReLU(name=f"{name}_reduce_relu")(s)
    s = layers.Conv2D(channels, 1, name=f"{name}_expand_conv")(s)
    s = hard_sigmoid(s, name=f"{name}_gate")
    return layers.Multiply(name=f"{name}_excite")([x, s])


def drop_path_rates(drop_path, blocks):
    """The drop-path rate of each of `blocks` blocks: 0 for the first, rising linearly towards
    `drop_path` (block i of n: drop_path * i / n, as timm and TF's EfficientNet and MobileNetV4
    code). ValueError unless 0 <= drop_path < 1."""
    if not (isinstance(drop_path, (int, float)) and not isinstance(drop_path, bool)
            and 0.0 <= drop_path < 1.0):
        raise ValueError(f"drop_path must be in [0, 1), got {drop_path!r}")
    return [drop_path * index / blocks for index in range(blocks)]


def layer_scale(x, init, *, name):
    """Multiplies each channel by its own trained factor, `init` at first (LayerScale, Touvron
    et al. 2021): a 1x1 depthwise conv without bias, Keras' built-in per-channel multiply,
    which converts to one DEPTHWISE_CONV_2D."""
    return layers.DepthwiseConv2D(1, use_bias=False, name=name,
                                  depthwise_initializer=keras.initializers.Constant(init))(x)


def residual_add(shortcut, x, *, name, drop_path=0.0):
    """`shortcut + x` (layer `{name}_add`). With `drop_path` > 0, stochastic depth (Huang et
    al., 2016): in training, each image's residual branch `x` is dropped with that probability
    and kept ones are scaled by 1 / (1 - drop_path), so the block is skipped for that image;
    in inference it is the plain sum. It is Keras' Dropout with one draw per image (noise
    shape (batch, 1, 1, 1)), layer `{name}_drop_path`, which exported files leave out."""
    if drop_path > 0:
        x = layers.Dropout(drop_path, noise_shape=(None, 1, 1, 1), name=f"{name}_drop_path")(x)
    return layers.Add(name=f"{name}_add")([shortcut, x])


def inverted_residual(x, *, expanded, filters, name, kernel_size=3, strides=1,
                      activation_kind="relu6", se_channels=0, bn_momentum=0.999, dilation=1,
                      on_expanded=None, drop_path=0.0):
    """1x1 expand + BN + act -> k x k depthwise + BN + act -> [SE] -> 1x1 project + BN (linear),
    residual when stride 1 and shapes match. No expand conv when `expanded` equals the input width.
    `on_expanded`, if given, is called with the expanded tensor (a backbone feature map).
    `drop_path`: see `residual_add`.
    """
    shortcut = x
    in_channels = x.shape[-1]
    if expanded != in_channels:
        x = conv_bn(x, expanded, 1, activation_kind=activation_kind, bn_momentum=bn_momentum,
                    name=f"{name}_expand")
        if on_expanded is not None:
            on_expanded(x)
    x = depthwise_bn(x, kernel_size, strides=strides, activation_kind=activation_kind,
                     bn_momentum=bn_momentum, dilation=dilation, name=f"{name}_dw")
    if se_channels:
        x = squeeze_excite(x, se_channels, name=f"{name}_se")
    x = conv_bn(x, filters, 1, bn_momentum=bn_momentum, name=f"{name}_project")
    if strides == 1 and in_channels == filters:
        x = residual_add(shortcut, x, name=name, drop_path=drop_path)
    return x


def sandglass(x, *, reduced, filters, name, strides=1, identity_ratio=1.0, first_dw=True,
              last_dw=True, bn_momentum=0.999, dilation=1, drop_path=0.0):
    """3x3 depthwise + BN + ReLU6 -> 1x1 reduce + BN (linear) -> 1x1 expand + BN + ReLU6 ->
    3x3 depthwise (stride) + BN (linear), residual when stride 1 and shapes match, added to the
    first `identity_ratio` of the channels only (MobileNeXt's identity tensor multiplier).
    `first_dw` / `last_dw` False drop a depthwise conv (a stride-2 block needs `last_dw`).
    `dilation` is the rate of both depthwise convs. `drop_path` (see `residual_add`) needs a
    shortcut over every channel: a block whose other channels have none cannot be skipped.
    """
    shortcut = x
    in_channels = x.shape[-1]
    if first_dw:
        x = depthwise_bn(x, 3, activation_kind="relu6", bn_momentum=bn_momentum,
                         dilation=dilation, name=f"{name}_dw1")
    x = conv_bn(x, reduced, 1, bn_momentum=bn_momentum, name=f"{name}_reduce")
    x = conv_bn(x, filters, 1, activation_kind="relu6", bn_momentum=bn_momentum,
                name=f"{name}_expand")
    if last_dw or strides != 1:
        x = depthwise_bn(x, 3, strides=strides, bn_momentum=bn_momentum,
                         dilation=dilation, name=f"{name}_dw2")
    if strides != 1 or in_channels != filters:
        return x
    identity = int(round(in_channels * identity_ratio))
    if identity >= in_channels:
        return residual_add(shortcut, x, name=name, drop_path=drop_path)
    if drop_path > 0:
        raise ValueError("drop_path needs identity_ratio 1.0: a block whose shortcut covers "
                         f"only part of its channels ({identity_ratio}) cannot be skipped")
    sizes = [identity, in_channels - identity]
    shortcut_id, _ = ChannelSplit(sizes, name=f"{name}_shortcut_split")(shortcut)
    x_id, x_rest = ChannelSplit(sizes, name=f"{name}_split")(x)
    x_id = layers.Add(name=f"{name}_add")([shortcut_id, x_id])
    return layers.Concatenate(name=f"{name}_concat")([x_id, x_rest])


def channel_shuffle(x, groups, *, name, transposed=False):
    """ShuffleNet's channel shuffle: reshape to (h, w, g, c/g), transpose the last two, flatten.

    `transposed` reshapes to (h, w, c/g, g) instead, the inverse permutation, which the official
    ShuffleNetV1 code (megvii-model/ShuffleNet-Series) uses.
    """
    height, width, channels = x.shape[1:]
    split = (channels // groups, groups) if transposed else (groups, channels // groups)
    x = layers.Reshape((height, width, *split), name=f"{name}_reshape")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_transpose")(x)
    return layers.Reshape((height, width, channels), name=f"{name}_flatten")(x)
