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
