"""`build_backbone`: the named feature maps of every family, and dilation (`output_stride`)."""

import keras
import numpy as np
import pytest

from mobilenets import build_backbone, build_model, list_models, profile
from mobilenets.models.registry import min_input_size

ALL = list_models()
DILATING = ["efficientnet_lite", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
            "mobilenet_v3_small", "mobilenet_v4", "mobilenext"]
# Widths that keep the 224 px builds quick; each a valid option of its family.
SMALL = {"efficientnet_lite": {"alpha": 0.5}, "mobilenet_v1": {"alpha": 0.25},
         "mobilenet_v2": {"alpha": 0.35},
         "mobilenet_v3_large": {"alpha": 0.75}, "mobilenet_v3_small": {"alpha": 0.75},
         "mobilenet_v4": {"alpha": 0.5}, "mobilenext": {"alpha": 0.35},
         "shufflenet_v1": {"alpha": 0.25},
         "shufflenet_v2": {"alpha": 0.5}, "squeezenet": {"alpha": 0.5},
         "xception": {"alpha": 0.25}}


def sizes(model):
    return {name: tuple(tensor.shape[1:3]) for name, tensor in model.output.items()}


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [224, "smallest"])
def test_named_features_of_every_family(name, size):
    """stride_<s> maps at 1/s of the input (within the valid-padded stems' pixels), the last
    map the classifier pools, and SqueezeNet, whose last pool is at stride 16, without 32."""
    size = max(32, min_input_size(name)) if size == "smallest" else size
    found = sizes(build_backbone(name, input_shape=(size, size, 3), **SMALL[name]))
    strides = (8, 16) if name == "squeezenet" else (8, 16, 32)
    for stride in strides:
        height, width = found[f"stride_{stride}"]
        assert height == width
        if name in ("squeezenet", "xception"):  # valid-padded stems lose a few pixels
            assert size / stride - 2 <= height <= -(-size // stride)
        else:
            assert height == -(-size // stride), (stride, height)
    assert found["last"] == found[f"stride_{strides[-1]}"]
    assert ("stride_32" in found) == (name != "squeezenet")


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"])
def test_expansion_feeds_ssdlite(name):
    """`expansion_to_32` is the expanded input of the block that strides to 32: at stride 16,
    as wide as that block's expand conv (MobileNetV2: 6 x 96 = 576 channels)."""
    backbone = build_backbone(name)
    feature = backbone.output["expansion_to_32"]
    assert tuple(feature.shape[1:3]) == (14, 14)
    if name == "mobilenet_v2":
        assert feature.shape[-1] == 576
        assert feature is backbone.get_layer("block13_expand_relu").output


@pytest.mark.parametrize("name", DILATING)
@pytest.mark.parametrize("output_stride, size", [(16, 14), (8, 28)])
def test_output_stride_dilates_without_new_weights(name, output_stride, size):
    dilated = build_backbone(name, output_stride=output_stride)
    plain = build_backbone(name)
    assert sizes(dilated)["last"] == (size, size)
    assert sizes(dilated)["stride_8"] == (28, 28)
    assert profile(dilated)["params"] == profile(plain)["params"]
    rates = {layer.dilation_rate[0] for layer in dilated.layers
             if isinstance(layer, keras.layers.DepthwiseConv2D)}
    assert rates == ({1, 2} if output_stride == 16 else {1, 2, 4})


def test_the_strided_layer_keeps_its_rate_and_the_next_ones_double():
    """TF-slim's rule (DeepLab's): MobileNetV2 at output stride 16, the first 160-channel
    block's depthwise conv runs at stride 1 and rate 1, the blocks after it at rate 2."""
    backbone = build_backbone("mobilenet_v2", output_stride=16)
    first = backbone.get_layer("block13_dw_conv")
    assert first.strides == (1, 1) and first.dilation_rate == (1, 1)
    assert backbone.get_layer("block14_dw_conv").dilation_rate == (2, 2)
    assert backbone.get_layer("block16_dw_conv").dilation_rate == (2, 2)


def test_backbone_computes_what_the_classifier_pools():
    """The classifier is the backbone's `last` map, pooled: same layers, same values."""
    model = build_model("mobilenet_v2", alpha=0.35, input_shape=(64, 64, 3), include_top=False)
    backbone = build_backbone("mobilenet_v2", alpha=0.35, input_shape=(64, 64, 3))
    assert [layer.name for layer in backbone.layers] == [layer.name for layer in model.layers]
    backbone.set_weights(model.get_weights())
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(backbone(images)["last"].numpy(), model(images).numpy())


def test_options_a_backbone_does_not_take_are_errors():
    with pytest.raises(ValueError, match=r"output_stride: squeezenet cannot dilate its last "
                                         r"stages \(only 32\); the families that can: "
                                         r"efficientnet_lite, mobilenet_v1, mobilenet_v2"):
        build_backbone("squeezenet", output_stride=16)
    assert "last" in build_backbone("squeezenet", output_stride=32).output
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'num_classes' for mobilenet_v2"):
        build_backbone("mobilenet_v2", num_classes=10)
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\), got 4"):
        build_backbone("mobilenet_v2", output_stride=4)
