"""Stochastic depth (drop path): which blocks get it at which rate, what it does in training,
and that inference, exported files and QAT do not see it."""

import re

import keras
import numpy as np
import pytest

from mobilenets import build_model, compat
from mobilenets.config import ModelConfig
from mobilenets.export.convert import export_tflite
from mobilenets.models import layers as blocks
from mobilenets.models.registry import family_options, list_models
from mobilenets.tasks.classification import family_options as configured_options

FAMILIES = ["efficientnet_lite", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
            "mobilenet_v4", "mobilenext"]


def test_rates_rise_linearly_from_zero():
    assert blocks.drop_path_rates(0.2, 4) == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert blocks.drop_path_rates(0.0, 3) == [0.0, 0.0, 0.0]
    for bad in (1.0, -0.1, True, "0.2"):
        with pytest.raises(ValueError, match=r"drop_path must be in \[0, 1\)"):
            blocks.drop_path_rates(bad, 3)


def residual_block(drop_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 8))
    out = blocks.inverted_residual(inputs, expanded=16, filters=8, name="b",
                                   drop_path=drop_path)
    model = keras.Model(inputs, out)
    branch = keras.Model(inputs, model.get_layer("b_project_bn").output)
    return model, branch


def test_training_skips_whole_blocks_per_image_and_scales_the_kept_ones():
    model, branch = residual_block(0.5)
    x = np.random.default_rng(0).normal(size=(64, 4, 4, 8)).astype("float32")
    out = model(x, training=True).numpy()
    body = branch(x, training=True).numpy()  # BatchNorm in training mode, as inside `model`
    skipped = np.all(np.isclose(out, x, atol=1e-5), axis=(1, 2, 3))
    kept = np.all(np.isclose(out, x + 2.0 * body, atol=1e-4), axis=(1, 2, 3))
    assert np.all(skipped ^ kept)  # every image: the whole branch dropped, or kept and doubled
    assert 16 < skipped.sum() < 48  # about half of 64
    np.testing.assert_allclose(model(x, training=False), x + branch(x, training=False),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", FAMILIES)
def test_families_drop_their_residual_blocks_at_linear_rates(name):
    shape = dict(input_shape=(32, 32, 3), num_classes=10, alpha=0.5)
    plain = build_model(name, **shape)
    dropping = build_model(name, drop_path=0.2, **shape)
    dropping.set_weights(plain.get_weights())
    blocks_built = {re.match(r"block\d+", layer.name)[0] for layer in plain.layers
                    if re.match(r"block\d+_", layer.name)}
    adds = {layer.name.removesuffix("_add") for layer in dropping.layers
            if layer.name.endswith("_add")}
    drops = {layer.name.removesuffix("_drop_path"): layer.rate for layer in dropping.layers
             if layer.name.endswith("_drop_path")}
    assert set(drops) == adds - {"block0"}  # the first block's rate is 0: no layer
    for block, rate in drops.items():
        assert rate == pytest.approx(0.2 * int(block.removeprefix("block")) / len(blocks_built))
    assert dropping.count_params() == plain.count_params()
    if name == "mobilenet_v2":  # the paper's Table 2: 17 bottlenecks, 10 with a shortcut
        assert (len(blocks_built), len(adds)) == (17, 10)

    x = np.random.default_rng(1).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(dropping(x, training=False), plain(x, training=False),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(dropping(x, training=True), plain(x, training=True), atol=1e-4)


def test_exported_files_leave_drop_path_out():
    shape = dict(input_shape=(32, 32, 3), num_classes=10, alpha=0.35)
    plain = build_model("mobilenet_v2", **shape)
    dropping = build_model("mobilenet_v2", drop_path=0.2, **shape)
    dropping.set_weights(plain.get_weights())

    def ops(model):
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_content=export_tflite(model, "float32"))
        return [op["op_name"] for op in compat.ops_details(interpreter)]

    assert ops(dropping) == ops(plain)


@pytest.mark.slow  # two MobileNetV2s through tfmot, with its first import: half a minute
def test_qat_twin_runs_every_block():
    from mobilenets.quantization import qat

    shape = dict(input_shape=(32, 32, 3), num_classes=10, alpha=0.35)
    plain = build_model("mobilenet_v2", **shape)
    dropping = build_model("mobilenet_v2", drop_path=0.3, **shape)
    dropping.set_weights(plain.get_weights())
    quantized = qat.quantize(dropping)
    drops = [layer for layer in quantized.layers if "drop_path" in layer.name]
    assert len(drops) == 10  # wrapped by tfmot
    assert all(getattr(layer, "layer", layer).rate == 0.0 for layer in drops)
    x = np.random.default_rng(2).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(quantized(x, training=True),
                               qat.quantize(plain)(x, training=True), rtol=1e-6, atol=1e-6)


def test_families_without_residual_blocks_refuse_it_by_name():
    able = [n for n in list_models() if "drop_path" in family_options(n)]
    assert able == FAMILIES
    with pytest.raises(ValueError, match="drop_path: mobilenet_v1 has no residual blocks to "
                                         "skip; the families with drop path: efficientnet_lite, "
                                         "mobilenet_v2"):
        configured_options(ModelConfig(name="mobilenet_v1", drop_path=0.1))
    assert configured_options(ModelConfig(name="mobilenet_v1")) == {}
    assert configured_options(ModelConfig(name="mobilenet_v2", drop_path=0.1)) == {
        "drop_path": 0.1}
    with pytest.raises(ValueError, match="drop_path needs identity_ratio 1.0"):
        build_model("mobilenext", input_shape=(32, 32, 3), identity_ratio=0.5, drop_path=0.1)
