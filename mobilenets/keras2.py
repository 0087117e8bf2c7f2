"""The tf_keras (Keras 2) twin of a Keras 3 model: every place where a model may be a tf_keras
one is decided here. With `quantization`, the only code that imports tf_keras.

Two stages train a tf_keras (Keras 2) copy of a Keras 3 model, its twin:
- QAT, because tensorflow-model-optimization quantizes only tf_keras models (tfmot issues
  #1119, #1270);
- multi-worker training, because Keras 3's `fit` fails under MultiWorkerMirroredStrategy
  (keras-team/keras#20585) while tf_keras' works.
`twin` rebuilds the model layer by layer from each layer's config with the same names and
weights, so the builders are never written twice. The training loop asks this module which
library a model belongs to (`api`) and adapts what differs (schedules, L2, callbacks).
"""

import inspect

import keras
import tensorflow as tf
import tf_keras

# Config keys that carry no information once the weights are copied (or that tf_keras sets
# itself): initializers, regularizers and constraints. The dtype policy is passed by name.
_DROPPED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
_DROPPED_KEYS = {"dtype", "build_config", "quantization_config"}
# Options a tf_keras layer lacks because it always does what they say: its Resizing is
# channels-last only, and its padding (fill_mode) is used only with pad_to_aspect_ratio, which
# an option of its own refuses when set.
_IMPLIED = {("data_format", "channels_last"), ("fill_mode", "constant")}


def api(model):
    """The Keras library of `model`: the `keras` module (3.x), or `tf_keras` for a twin.

    Both have the same `losses`, `metrics`, `optimizers` and `callbacks` namespaces.
    """
    return keras if isinstance(model, keras.Model) else tf_keras


def is_twin(model):
    return isinstance(model, tf_keras.Model)


def for_strategy(model, strategy_name):
    """The model `fit` trains under `strategy_name` (runtime.strategy): `model` itself, or its
    twin under multi_worker (keras-team/keras#20585)."""
    return twin(model) if strategy_name == "multi_worker" else model


class ChannelSplit(tf_keras.layers.Layer):
    """tf_keras twin of `mobilenets.models.layers.ChannelSplit` (one SPLIT / SPLIT_V op)."""

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = [int(s) for s in sizes]

    def call(self, inputs):
        # Equal parts given as a count make one SPLIT op, as the Keras 3 layer does (XNNPACK
        # runs int8 SPLIT but not int8 SPLIT_V).
        parts = len(self.sizes) if len(set(self.sizes)) == 1 else self.sizes
        return tf.split(inputs, parts, axis=-1)

    def compute_output_shape(self, input_shape):
        return [tf.TensorShape([*input_shape[:-1], size]) for size in self.sizes]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}


# Our layers' tf_keras counterparts (tf_keras' BatchNormalization is fused already).
TWIN_CLASSES = {"ChannelSplit": ChannelSplit,
                "FusedBatchNormalization": tf_keras.layers.BatchNormalization}


def twin(model):
    """Rebuilds the Keras 3 functional `model` in tf_keras: same layers, names and weights.

    Each layer is made from its own config (minus initializers and the dtype policy) and
    called on the twins of its inputs; a config key tf_keras does not know is an error unless
    its value is empty, so nothing is silently dropped.
    """
    tensors = {}
    for layer in model.layers:
        config = layer.get_config()
        if type(layer).__name__ == "InputLayer":
            tensors[id(layer.output)] = tf_keras.Input(
                shape=config["batch_shape"][1:], name=layer.name)
            continue
        cls = TWIN_CLASSES.get(type(layer).__name__) or getattr(
            tf_keras.layers, type(layer).__name__)
        # The policy by name: mixed precision carries over, the float32 softmax stays float32.
        copy = cls(**twin_config(cls, config, layer.name), dtype=layer.dtype_policy.name)
        inputs = layer.input
        if isinstance(inputs, (list, tuple)):
            outputs = copy([tensors[id(t)] for t in inputs])
        else:
            outputs = copy(tensors[id(inputs)])
        copy.set_weights(layer.get_weights())
        if isinstance(layer.output, (list, tuple)):
            for ours, theirs in zip(layer.output, outputs):
                tensors[id(ours)] = theirs
        else:
            tensors[id(layer.output)] = outputs
    return tf_keras.Model([tensors[id(t)] for t in model.inputs],
                          [tensors[id(t)] for t in model.outputs], name=model.name)


def twin_config(cls, config, name):
    """The part of a Keras 3 layer `config` that tf_keras' `cls` takes; ValueError for a
    non-empty option it lacks."""
    accepted = {"name", "trainable"}
    for base in cls.__mro__:  # options may be passed on to a base class (BatchNormalization)
        if "__init__" in vars(base):
            accepted |= set(inspect.signature(base.__init__).parameters)
    kept = {}
    for key, value in config.items():
        if key in _DROPPED_KEYS or key.endswith(_DROPPED_SUFFIXES):
            continue
        if key in accepted:
            kept[key] = value
        elif value not in (None, False, 0, [], {}) and (key, value) not in _IMPLIED:
            raise ValueError(f"layer {name}: tf_keras.layers.{cls.__name__} has no option "
                             f"{key!r} (= {value!r}); the tf_keras twin cannot rebuild it")
    return kept


def copy_weights(trained_twin, model):
    """Copies a trained twin's weights back into its Keras 3 `model`, layer by layer."""
    for layer in model.layers:
        layer.set_weights(trained_twin.get_layer(layer.name).get_weights())


def decayed_weights(model):
    """Conv and dense kernels (what weight decay applies to: TF-slim leaves depthwise kernels,
    biases and BatchNorm out), of a Keras 3 model or a twin (QAT or plain)."""
    if not is_twin(model):
        return [layer.kernel for layer in model.layers
                if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
                and not isinstance(layer, keras.layers.DepthwiseConv2D)]
    return [v for v in model.trainable_variables if v.name.endswith("/kernel:0")]


def add_l2(model, factor):
    """Adds factor * |w|^2 of every `decayed_weights` kernel to the training loss: as a
    per-kernel regularizer in Keras 3, as model losses in tf_keras (which has no per-variable
    regularizer attribute)."""
    kernels = decayed_weights(model)
    if not is_twin(model):
        for kernel in kernels:
            kernel.regularizer = keras.regularizers.L2(factor)
        return
    for kernel in kernels:
        model.add_loss(lambda kernel=kernel: factor * tf.reduce_sum(tf.square(kernel)))


def schedule(learning_rate, model):
    """A Keras 3 learning-rate schedule in the form `model`'s optimizers take."""
    return learning_rate if not is_twin(model) else _Schedule(learning_rate)


class _Schedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """A Keras 3 schedule in the form tf_keras optimizers take."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate

    def __call__(self, step):
        return self.learning_rate(step)

    def get_config(self):
        return self.learning_rate.get_config()


def callbacks(model, hooks):
    """`hooks` (Keras 3 callbacks, or callbacks of `api(model)`) in the form `model`'s `fit`
    takes: a twin's `fit` runs each Keras 3 callback through `_KerasCallback`."""
    if not is_twin(model):
        return list(hooks)
    return [_KerasCallback(h) if isinstance(h, keras.callbacks.Callback) else h for h in hooks]


class _KerasCallback(tf_keras.callbacks.Callback):
    """Runs one of the training loop's Keras 3 callbacks (they use the model, its optimizer
    and the logs) in a tf_keras `fit`: the two libraries' callback classes share their hooks
    but not their base class."""

    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)

    def on_train_begin(self, logs=None):
        self.callback.on_train_begin(logs)

    def on_train_end(self, logs=None):
        self.callback.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.callback.on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch, logs=None):
        self.callback.on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.callback.on_train_batch_end(batch, logs)


def rgb_wrapper(model, luma):
    """A tf_keras `model` of one input channel (a QAT model) behind a fixed 1x1 convolution
    that turns RGB pixels into their luma (weights `luma`). It stays float in the int8 file,
    as the QAT model's input normalization does: a QAT model's first convolution cannot take
    the folded gray conversion without changing what its fake quantization learned."""
    height, width, _ = model.input_shape[1:]
    inputs = tf_keras.Input((height, width, 3), name="image")
    convert = tf_keras.layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_gray")
    gray = convert(inputs)
    convert.set_weights([tf.reshape(tf.constant(luma, tf.float32), (1, 1, 3, 1)).numpy()])
    return tf_keras.Model(inputs, model(gray), name=model.name)
