"""Multiply-adds against the papers, and the counting convention on hand-checkable layers."""

import keras
import pytest

from mobilenets import build_model, profile


def test_macs_of_single_layers():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(6, 3, strides=2, padding="same")(inputs)  # 4x4x6
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)  # 4x4x12
    x = keras.layers.Conv2D(12, 1, groups=3)(x)  # 4x4x12, 4 inputs per output
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(5)(x)
    stats = profile(keras.Model(inputs, x))
    assert stats["macs"] == 16 * 9 * 4 * 6 + 16 * 9 * 12 + 16 * 4 * 12 + 12 * 5


def test_macs_of_matrix_products():
    """Attention's products: (10 x 4) by (6 x 4)^T, then (10 x 6) by (6 x 3)."""
    query, key, value = keras.Input((10, 4)), keras.Input((6, 4)), keras.Input((6, 3))
    scores = keras.layers.Dot(axes=2)([query, key])
    context = keras.layers.Dot(axes=(2, 1))([scores, value])
    assert profile(keras.Model([query, key, value], context))["macs"] == 10 * 6 * 4 + 10 * 3 * 6


# (model, options, paper multiply-adds in millions, relative tolerance): the papers' tables.
PAPER_MACS = [
    ("mobilenet_v1", {}, 569, 0.02),
    ("mobilenet_v1", {"alpha": 0.5}, 149, 0.02),
    ("mobilenet_v2", {}, 300, 0.02),
    ("mobilenet_v2", {"alpha": 1.4}, 582, 0.02),
    ("mobilenet_v3_large", {}, 217, 0.03),
    ("mobilenet_v3_small", {}, 56, 0.02),  # the paper's count; TF-slim's convention gives 66
    ("mobilenext", {}, 300, 0.05),
    ("shufflenet_v2", {}, 146, 0.03),
    ("shufflenet_v1", {"groups": 3}, 140, 0.06),
    # tensorflow/tpu's EfficientNet-Lite README (its count is 5% / 3% above this convention's)
    ("efficientnet_lite", {}, 407, 0.06),
    ("efficientnet_lite", {"variant": "lite4", "input_shape": (300, 300, 3)}, 2640, 0.04),
]


@pytest.mark.parametrize("name, options, paper, tolerance", PAPER_MACS,
                         ids=[f"{n}-{o}" for n, o, _, _ in PAPER_MACS])
def test_macs_match_papers(name, options, paper, tolerance):
    macs = profile(build_model(name, **options))["macs"] / 1e6
    assert macs == pytest.approx(paper, rel=tolerance)


def test_v1_resolution_multiplier():
    for size, paper in [(192, 418), (160, 290), (128, 186)]:
        macs = profile(build_model("mobilenet_v1", input_shape=(size, size, 3)))["macs"] / 1e6
        assert macs == pytest.approx(paper, rel=0.02)


# Trainable counts published by torchvision (with BatchNorm affine weights, without its
# running statistics) and by the MobileNeXt paper.
@pytest.mark.parametrize("name, options, expected, tolerance", [
    ("shufflenet_v2", {}, 2_278_604, 0),
    ("squeezenet", {"version": "1.0"}, 1_248_424, 0),
    ("squeezenet", {"version": "1.1"}, 1_235_496, 0),
    ("mobilenext", {}, 3.5e6, 0.02),
])
def test_trainable_params(name, options, expected, tolerance):
    trainable = profile(build_model(name, **options))["trainable_params"]
    assert trainable == pytest.approx(expected, rel=tolerance)
