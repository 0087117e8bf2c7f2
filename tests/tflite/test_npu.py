"""Ahead-of-time NPU compilation (`mobilenets.tflite.npu`, `export.npu`): targets checked when
the config loads, LiteRT's AOT compiler run on an int8 file, the reason it gives when a
vendor's compiler libraries are missing, and where the ops of a compiled file run.

The vendors' compiler libraries come from packages whose install downloads them from the
vendor (npu.VENDORS); the tests that compile for real skip, naming the package, where it is not
installed (on this project's CI machines none is: their downloads are unreachable)."""

import importlib.util

import keras
import numpy as np
import pytest

from mobilenets import config as config_lib
from mobilenets import export_tflite
from mobilenets.errors import UserError
from mobilenets.tflite import npu

rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def int8_file(tmp_path_factory):
    """A small classifier's int8 file, as `export_tflite` writes them (uint8 pixels in)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu6")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    pixels = rng.integers(0, 256, (8, 16, 16, 3)).astype(np.float32)

    def calibration():
        for image in pixels:
            yield [image[None]]

    path = tmp_path_factory.mktemp("npu") / "model_int8.tflite"
    path.write_bytes(export_tflite(keras.Model(inputs, outputs), "int8", calibration))
    return path


def test_targets_are_checked_when_the_config_loads(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: {name: mobilenet_v2}\n")
    assert config_lib.load(config, ["export.npu=[qualcomm, mediatek:MT6989]"]).export.npu == [
        "qualcomm", "mediatek:MT6989"]
    with pytest.raises(UserError, match="unknown vendor 'qualcom'; valid: qualcomm, mediatek, "
                                        "google_tensor, intel_openvino"):
        config_lib.load(config, ["export.npu=[qualcom]"])
    with pytest.raises(UserError, match="qualcomm has no chip 'SM9999' in LiteRT; valid: .*"
                                        "SM8650"):
        config_lib.load(config, ["export.npu=[qualcomm:SM9999]"])
    with pytest.raises(UserError, match="export.npu compiles int8 files: add int8 to "
                                        "export.modes"):
        config_lib.load(config, ["export.npu=[qualcomm]", "export.modes=[float32]"])


def test_placement_counts_the_dispatch_ops_as_npu_partitions(int8_file):
    """A compiled file as LiteRT writes it: the NPU's partitions are DISPATCH_OP custom ops,
    the rest of the graph stays in TFLite ops, which run on the CPU. Made here from the int8
    file by turning its middle ops into one such op's opcode."""
    from mobilenets import compat

    utils, schema = compat.tflite_flatbuffer_utils(), compat.tflite_schema()
    plain = npu.placement(int8_file.read_bytes())
    assert plain["npu_partitions"] == 0 and sum(plain["cpu_ops"].values()) == plain["ops"]
    assert plain["cpu_ops"]["CONV_2D"] == 1 and plain["cpu_ops"]["DEPTHWISE_CONV_2D"] == 1

    model = utils.convert_bytearray_to_object(bytearray(int8_file.read_bytes()))
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = npu.DISPATCH_OP.encode()
    model.operatorCodes.append(code)
    graph = model.subgraphs[0]
    names = [_name(model, op, schema) for op in graph.operators]
    for op, name in zip(graph.operators, names):
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            op.opcodeIndex = len(model.operatorCodes) - 1
    placed = npu.placement(bytes(utils.convert_object_to_bytearray(model)))
    assert placed["ops"] == len(names) and placed["npu_partitions"] == 2
    expected = {}
    for name in names:
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            expected[name] = expected.get(name, 0) + 1
    assert placed["cpu_ops"] == expected


def _name(model, op, schema):
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    return next(name for name, value in vars(schema.BuiltinOperator).items() if value == builtin)


def _installed(vendor):
    return importlib.util.find_spec(npu.VENDORS[vendor].package.replace("-", "_")) is not None


@pytest.mark.skipif(_installed("qualcomm"), reason="Qualcomm's SDK is installed: the compile "
                    "is tested by test_an_installed_sdk_compiles_the_file")
def test_a_missing_sdk_is_named_with_the_package_that_brings_it(int8_file, tmp_path):
    """LiteRT's AOT compiler runs, its Qualcomm plugin cannot load Qualcomm's libraries, and
    the reason says which library and what to install; nothing is left in the folder."""
    entry = npu.compile_file(int8_file, "qualcomm:SM8650", tmp_path / "npu")
    assert entry["target"] == "qualcomm:SM8650" and entry["files"] == {}
    assert list(entry["failed"]) == ["SM8650"]
    assert entry["failed"]["SM8650"] == (
        "the vendor's compiler cannot load libQnnHtp.so: `pip install "
        "ai-edge-litert-sdk-qualcomm`, whose install downloads Qualcomm's AI Runtime SDK (QAIRT) "
        "from softwarecenter.qualcomm.com")
    assert list((tmp_path / "npu").iterdir()) == []


@pytest.mark.parametrize("target", ["qualcomm:SM8650", "mediatek:MT6989",
                                    "google_tensor:Tensor_G4"])
def test_an_installed_sdk_compiles_the_file(int8_file, tmp_path, target):
    vendor = target.split(":")[0]
    if not _installed(vendor):
        pytest.skip(f"{npu.VENDORS[vendor].package} is not installed here: its install "
                    f"downloads {npu.VENDORS[vendor].sdk}")
    entry = npu.compile_file(int8_file, target, tmp_path)
    assert entry["failed"] == {} and len(entry["files"]) == 1
    (name, placed), = entry["files"].items()
    assert (tmp_path / name).is_file() and placed["npu_partitions"] >= 1
