"""The private APIs of other libraries that `mobilenets.compat` reaches: each test fails, naming
the library, when an upgrade moves or changes what the project relies on."""

import keras
import numpy as np

from mobilenets import build_model, compat, export_tflite


def test_keras_keeps_ema_averages_beside_the_variables():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5)
    optimizer.build(model.trainable_variables)
    variables, averages = compat.ema_variables(optimizer)
    assert len(variables) == len(averages) == 2, "Keras moved its EMA variables"
    assert [tuple(v.shape) for v in variables] == [tuple(a.shape) for a in averages]
    for _ in range(3):  # (fit would end by copying the averages into the variables)
        optimizer.apply([keras.ops.ones_like(v) for v in variables], variables)
    kernel, average = variables[0].numpy(), averages[0].numpy()
    assert not np.array_equal(kernel, average), "Keras no longer updates the averages there"
    assert np.all(average > kernel), "the averages lag behind the descending weights"


def tiny_file():
    model = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), num_classes=3)
    return export_tflite(model, "float32")


def test_litert_lists_the_execution_plan():
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tiny_file())
    interpreter.allocate_tensors()
    nodes = compat.ops_details(interpreter)
    assert {"op_name", "index", "inputs", "outputs"} <= set(nodes[0]), "LiteRT changed its ops"
    assert "DELEGATE" in {node["op_name"] for node in nodes}, "XNNPACK no longer reported"


def test_tensorflow_keeps_the_tflite_schema_and_flatbuffer_utils():
    schema = compat.tflite_schema()
    for name in ("DEQUANTIZE", "SOFTMAX", "ADD", "RELU", "RELU6"):
        assert hasattr(schema.BuiltinOperator, name), f"TFLite schema lost {name}"
    assert hasattr(schema, "QuantizationParametersT") and hasattr(schema, "OperatorCodeT")
    utils = compat.tflite_flatbuffer_utils()
    content = tiny_file()
    model = utils.convert_bytearray_to_object(bytearray(content))
    assert model.subgraphs[0].operators, "flatbuffer_utils no longer reads TFLite files"
    again = bytes(utils.convert_object_to_bytearray(model))
    assert again[4:8] == b"TFL3"


def test_tfmot_keeps_its_default_8bit_registry():
    registry = compat.tfmot_default_8bit_registry()
    instance = registry.Default8BitQuantizeRegistry()
    assert isinstance(instance._layer_quantize_map, dict), "tfmot moved its layer map"
    assert hasattr(registry, "Default8BitConvQuantizeConfig")


def test_keras_records_which_layers_feed_a_functional_layer():
    import keras

    from mobilenets.compat import inbound_layers, producing_layer

    inputs = keras.Input((4,), name="x")
    a = keras.layers.Dense(2, name="a")(inputs)
    b = keras.layers.Dense(2, name="b")(inputs)
    total = keras.layers.Add(name="total")([b, a])
    model = keras.Model(inputs, total)
    assert producing_layer(model.outputs[0]).name == "total"
    assert [layer.name for layer in inbound_layers(model.get_layer("total"))] == ["b", "a"]
    assert [layer.name for layer in inbound_layers(model.get_layer("a"))] == ["x"]
    assert inbound_layers(model.get_layer("x")) == []


def test_keras_optimizers_take_each_steps_learning_rate_in_backend_update_step():
    import keras
    import numpy as np

    from mobilenets.compat import with_learning_rate_multipliers

    for name in ("SGD", "RMSprop", "Adam", "AdamW"):
        a, b = keras.Variable(np.ones(3), name="a"), keras.Variable(np.ones(3), name="b")
        reference = keras.Variable(np.ones(3), name="ref")
        decay = {"weight_decay": 0.0} if name == "AdamW" else {}  # decay keeps the base rate
        optimizer = with_learning_rate_multipliers(getattr(keras.optimizers, name))(
            learning_rate=0.1, **decay)
        optimizer.multipliers = {b.path: 0.5}
        plain = getattr(keras.optimizers, name)(learning_rate=0.05, **decay)
        gradient = np.array([0.3, -0.2, 0.1])
        for _ in range(3):
            optimizer.apply([gradient, gradient], [a, b])
            plain.apply([gradient], [reference])
        assert not np.allclose(a.numpy(), b.numpy()), name
        np.testing.assert_allclose(b.numpy(), reference.numpy(), rtol=1e-6, err_msg=name)
