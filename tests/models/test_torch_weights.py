"""PyTorch checkpoints into our builders: the reference implementations' outputs
(tests/golden/*.json, made by tests/golden/make.py with PyTorch) reproduced from seeded random
weights written as a .safetensors file and read back through the importer."""

import json
import pathlib

import numpy as np
import pytest
from safetensors.numpy import save_file

from mobilenets import build_model
from mobilenets.models.pretrained import WeightsMismatch
from mobilenets.models.torch_weights import load_torch, read_state_dict
from tests.golden.state import random_images, random_state

GOLDEN = pathlib.Path(__file__).parents[1] / "golden"
FAST = ("torchvision_squeezenet1_1", "torchvision_mobilenet_v3_small")


def cases():
    return [pytest.param(path, id=path.stem,
                         marks=() if path.stem in FAST else pytest.mark.slow)
            for path in sorted(GOLDEN.glob("*.json"))]


def checkpoint(golden, path):
    save_file(random_state(golden["keys"], golden["weights_seed"]), str(path))
    return path


def ours(golden, **options):
    options = {"input_shape": (224, 224, 3), "num_classes": 10, "classifier_activation": None,
               "padding": "symmetric", **golden["ours"], **options}
    return build_model(options.pop("name"), **options)


def test_every_reference_has_a_golden_file():
    assert len(cases()) == 15


@pytest.fixture
def float64():
    """Builds models in float64 inside the test. The references' outputs are float64: with
    random weights these networks amplify float32 rounding to 5e-4 of their outputs (PyTorch's
    own float32 run differs from its float64 one by that much), which would hide a real
    difference of that size; in float64 ours equals the reference to its 7 decimals."""
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


@pytest.mark.parametrize("path", cases())
def test_an_imported_checkpoint_reproduces_the_reference_outputs(path, tmp_path, float64):
    golden = json.loads(path.read_text())
    model = ours(golden)
    state = read_state_dict(checkpoint(golden, tmp_path / "model.safetensors"))
    state = {name: value.astype(np.float64) for name, value in state.items()}
    assert load_torch(model, state, bn_epsilon=golden["bn_epsilon"]) == []
    images = random_images(golden["images_shape"], golden["images_seed"]).transpose(0, 2, 3, 1)
    expected = np.array(golden["outputs"])
    scale = max(1.0, float(np.abs(expected).max()))  # random networks' outputs reach 1e5
    # Keras' Rescaling keeps its scale in float32 in a float64 model: the 1/6 of MobileNetV3's
    # hard-swish and hard-sigmoid is 3e-8 off (relative), which its 20-odd such layers compound
    # (timm's mobilenetv3_small_100: 1.4e-7 after the stem, 2.7e-6 at the logits).
    tolerance = 1e-5 if golden["ours"]["name"].startswith("mobilenet_v3") else 1e-6
    np.testing.assert_allclose(model(images.astype(np.float64)).numpy(), expected,
                               atol=tolerance * scale)


def test_an_imported_checkpoint_runs_in_float32(tmp_path):
    golden = json.loads((GOLDEN / "torchvision_mobilenet_v2.json").read_text())
    model = ours(golden)
    load_torch(model, read_state_dict(checkpoint(golden, tmp_path / "model.safetensors")),
               bn_epsilon=golden["bn_epsilon"])
    images = random_images(golden["images_shape"], golden["images_seed"]).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(model(images).numpy(), golden["outputs"], atol=1e-4)


def test_same_padding_computes_something_else():
    """Why `padding: symmetric`: with TF's padding every stride-2 layer shifts by a pixel."""
    golden = json.loads((GOLDEN / "torchvision_mobilenet_v3_small.json").read_text())
    state = random_state(golden["keys"], golden["weights_seed"])
    model = ours(golden, padding="same")
    load_torch(model, state, bn_epsilon=golden["bn_epsilon"])
    images = random_images(golden["images_shape"], golden["images_seed"]).transpose(0, 2, 3, 1)
    assert not np.allclose(model(images).numpy(), golden["outputs"], atol=1e-2)


def test_another_number_of_classes_keeps_a_fresh_classifier():
    golden = json.loads((GOLDEN / "torchvision_squeezenet1_1.json").read_text())
    model = ours(golden, num_classes=7)
    fresh = model.get_layer("logits").get_weights()
    kept = load_torch(model, random_state(golden["keys"], 0), bn_epsilon=1e-5)
    assert kept == ["logits"]
    np.testing.assert_array_equal(model.get_layer("logits").get_weights()[0], fresh[0])


def test_a_checkpoint_of_another_model_is_refused_naming_both_layers():
    golden = json.loads((GOLDEN / "torchvision_squeezenet1_1.json").read_text())
    model = build_model("squeezenet", version="1.0", input_shape=(224, 224, 3), num_classes=10)
    before = model.get_layer("stem_conv").get_weights()[0]
    with pytest.raises(WeightsMismatch, match=r"its layer stem_conv has weights of shapes "
                                              r"\[\(7, 7, 3, 96\), \(96,\)\], module features.0"):
        load_torch(model, random_state(golden["keys"], 0))
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], before)


def test_checkpoint_files_are_unwrapped_or_refused_with_the_reason(tmp_path):
    state = {"module.conv.weight": np.ones((2, 1, 3, 3), np.float32)}
    save_file(state, str(tmp_path / "a.safetensors"))
    assert list(read_state_dict(tmp_path / "a.safetensors")) == ["conv.weight"]
    (tmp_path / "b.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(WeightsMismatch, match="cannot be read as a safetensors file"):
        read_state_dict(tmp_path / "b.safetensors")
    with pytest.raises(WeightsMismatch, match="a PyTorch checkpoint ends in"):
        read_state_dict(tmp_path / "c.ckpt")


def test_a_backbone_loads_the_same_checkpoint_without_its_head(tmp_path):
    from mobilenets import build_backbone

    golden = json.loads((GOLDEN / "torchvision_mobilenet_v3_small.json").read_text())
    state = random_state(golden["keys"], golden["weights_seed"])
    classifier = ours(golden)
    load_torch(classifier, state, bn_epsilon=golden["bn_epsilon"])
    backbone = build_backbone("mobilenet_v3_small", input_shape=(224, 224, 3),
                              padding="symmetric")
    assert load_torch(backbone, state, bn_epsilon=golden["bn_epsilon"]) == []
    for layer in backbone.layers:
        for mine, theirs in zip(layer.weights, classifier.get_layer(layer.name).weights):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_model_weights_in_a_config_load_a_checkpoint_into_a_gray_model(tmp_path, caplog):
    from mobilenets import experiment, tasks
    from mobilenets.config import ModelConfig
    from mobilenets.errors import UserError

    golden = json.loads((GOLDEN / "torchvision_squeezenet1_1.json").read_text())
    path = checkpoint(golden, tmp_path / "squeezenet1_1.safetensors")
    config = ModelConfig(name="squeezenet", options={"version": "1.1"},
                         input_shape=[64, 64, 1], weights=str(path), padding="symmetric")
    with caplog.at_level("INFO", logger="mobilenets"):
        model = experiment.build(tasks.get("classification"), config, 4)
    kernel = random_state(golden["keys"], golden["weights_seed"])["features.0.weight"]
    np.testing.assert_allclose(model.get_layer("stem_conv").kernel.numpy(),
                               kernel.transpose(2, 3, 1, 0).sum(axis=2, keepdims=True),
                               rtol=1e-6)
    assert "logits starts fresh" in caplog.text
    config.options = {"version": "1.0"}
    with pytest.raises(UserError, match="model.weights: .* does not fit squeezenet1_0"):
        experiment.build(tasks.get("classification"), config, 4)


def test_a_checkpoint_needs_symmetric_padding(tmp_path):
    from mobilenets.config import load
    from mobilenets.errors import UserError

    (tmp_path / "w.safetensors").write_bytes(b"")
    (tmp_path / "c.yaml").write_text(f"model:\n  weights: {tmp_path / 'w.safetensors'}\n")
    with pytest.raises(UserError, match="PyTorch checkpoints were trained with padding: "
                                        "symmetric, set model.padding: symmetric"):
        load(tmp_path / "c.yaml")


def test_torchvision_and_timm_checkpoints_are_paired_by_name_others_by_build_order():
    from mobilenets.models.reference_names import reference_names
    from mobilenets.models.torch_weights import modules, our_order

    by_name = {}
    for path in GOLDEN.glob("*.json"):
        golden = json.loads(path.read_text())
        layers = [layer.name for layer in our_order(ours(golden))]
        names = reference_names(layers, dict(modules({key: 0 for key, _ in golden["keys"]})))
        by_name[path.stem] = names is not None
        if names:  # each name is the reference's: every module taken once
            assert sorted(names.values()) == sorted(
                {key.rpartition(".")[0] for key, _ in golden["keys"]}), path.stem
    assert {stem for stem, named in by_name.items() if not named} == {
        "official_mobilenext", "official_shufflenet_v1_g3"}
    timm = json.loads((GOLDEN / "timm_mobilenetv4_hybrid_medium.json").read_text())
    layers = [layer.name for layer in our_order(ours(timm))]
    names = reference_names(layers, dict(modules({key: 0 for key, _ in timm["keys"]})))
    # the attention's query, key and value have the same shapes: only names tell them apart
    assert (names["block7_mqa_key"], names["block7_mqa_value"]) == (
        "blocks.2.4.attn.key.proj", "blocks.2.4.attn.value.proj")
    assert names["block0_fused_conv"] == "blocks.0.0.conv_exp"  # timm: stage 0 is a FusedIB


def test_a_missing_module_is_named_with_the_layer_that_takes_it():
    golden = json.loads((GOLDEN / "torchvision_mobilenet_v3_small.json").read_text())
    state = random_state(golden["keys"], golden["weights_seed"])
    del state["features.4.block.1.0.weight"]
    model = ours(golden)
    before = model.get_layer("stem_conv").get_weights()[0]
    with pytest.raises(WeightsMismatch, match=r"its layer block3_dw_conv takes module "
                                              r"features\.4\.block\.1\.0, which the "
                                              r"checkpoint does not have"):
        load_torch(model, state)
    np.testing.assert_array_equal(model.get_layer("stem_conv").get_weights()[0], before)
