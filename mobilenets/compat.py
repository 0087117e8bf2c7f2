"""The private or internal APIs of other libraries this project needs, reached from here only.

Each one has no public equivalent (said at each function) and a test in tests/test_compat.py
that fails loudly, naming the library, when an upgrade moves or changes it.
"""


def ema_variables(optimizer):
    """(trainable variables, their moving averages) of a Keras 3 optimizer with `use_ema`.

    Keras keeps the averages in private attributes and offers no public way to read them
    without ending training (`finalize_variable_values` overwrites the weights).
    """
    return optimizer._trainable_variables, optimizer._model_variables_moving_average


def ops_details(interpreter):
    """The execution plan of a LiteRT interpreter: one dict per node (`op_name`, `index`,
    `inputs`, `outputs`), delegate nodes included. LiteRT's only view of the graph it runs."""
    return interpreter._get_ops_details()


def tflite_schema():
    """TensorFlow's generated Python classes of the TFLite flatbuffer schema (the module
    `tensorflow.lite.python.schema_py_generated`, not part of TensorFlow's public API)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def tflite_flatbuffer_utils():
    """TensorFlow's helpers that read a .tflite file into the schema's object API and back
    (`tensorflow.lite.tools.flatbuffer_utils`, not part of TensorFlow's public API)."""
    from tensorflow.lite.tools import flatbuffer_utils

    return flatbuffer_utils


def tfmot_default_8bit_registry():
    """tfmot's default 8-bit registry module, whose `Default8BitQuantizeRegistry` (its layer map
    `_layer_quantize_map`) and `Default8BitConvQuantizeConfig` the QAT scheme extends: tfmot
    exports neither. Imported here, lazily, so that only the QAT stage loads tfmot."""
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry,
    )

    return default_8bit_quantize_registry


def producing_layer(tensor):
    """The layer of a Keras 3 Functional model that outputs `tensor` (Keras has no public
    accessor of the graph: a tensor's history)."""
    return tensor._keras_history.operation


def inbound_layers(layer):
    """The layers whose outputs a Keras 3 Functional model's `layer` takes, in its call order
    (its first node's input tensors, private as the history)."""
    return [producing_layer(tensor) for tensor in layer._inbound_nodes[0].input_tensors]


def with_learning_rate_multipliers(optimizer_class):
    """A subclass of the Keras 3 optimizer class `optimizer_class` whose `multipliers`
    ({variable path: factor}) scale the learning rate of those variables' updates (the
    backbone of a fine-tuned model).

    Keras 3 has no per-variable learning rate; its optimizers hand the rate of a step to
    `_backend_update_step` (private; TensorFlow's all-reduces and updates there), which this
    calls once per group of variables with the same factor. Decoupled weight decay keeps the
    optimizer's rate.
    """

    class Scaled(optimizer_class):
        multipliers = {}

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            groups = {}
            for grad, variable in zip(grads, trainable_variables):
                factor = self.multipliers.get(variable.path, 1.0)
                groups.setdefault(factor, ([], []))
                groups[factor][0].append(grad)
                groups[factor][1].append(variable)
            for factor, (group_grads, group_variables) in groups.items():
                rate = learning_rate if factor == 1.0 else learning_rate * factor
                super()._backend_update_step(group_grads, group_variables, rate)

    Scaled.__name__ = Scaled.__qualname__ = f"Scaled{optimizer_class.__name__}"
    return Scaled
