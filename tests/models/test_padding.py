"""`padding="symmetric"`: strided layers pad k // 2 on every side, as PyTorch (torchvision, timm,
the MobileNeXt and ShuffleNet authors' code); "same" keeps TensorFlow's bottom/right padding."""

import keras
import numpy as np
import pytest

from mobilenets import build_model, export_tflite
from mobilenets.models.layers import max_pool, padding_style
from mobilenets.tflite.xnnpack import delegate_partitions
from tests.reference import copy_weights, randomize
from tests.tiers import families

rng = np.random.default_rng(0)

# Sizes at which every strided layer of the family sees an odd size (where "same" pads one row
# and column on each side too): 33 -> 17 -> 9 -> 5 -> 3; Xception's valid stem convs take
# 71 to 33 first.
ODD_SIZES = {"xception": 71}


def pair(name, size, **options):
    models = [build_model(name, input_shape=(size, size, 3), num_classes=10, padding=padding,
                          **options) for padding in ("same", "symmetric")]
    images = rng.uniform(-1.0, 1.0, (2, size, size, 3)).astype("float32")
    randomize(models[0], rng, images)
    copy_weights(*models)
    return models, images


@pytest.mark.parametrize("name", families())
def test_symmetric_equals_same_where_every_strided_layer_sees_an_odd_size(name):
    (same, symmetric), images = pair(name, ODD_SIZES.get(name, 33))
    np.testing.assert_allclose(symmetric(images), same(images), atol=1e-5)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2"])
def test_symmetric_pads_both_sides_at_even_sizes(name):
    (same, symmetric), images = pair(name, 64)
    assert symmetric.get_layer("stem_pad").padding == ((1, 1), (1, 1))
    assert "stem_pad" not in {layer.name for layer in same.layers}
    assert same.output_shape == symmetric.output_shape
    assert not np.allclose(symmetric(images), same(images), atol=1e-3)


def test_squeezenet_pads_as_torchvision_in_both_styles():
    """Its stem is a valid conv and its pools round up (ceil mode): no strided "same" layer."""
    (same, symmetric), images = pair("squeezenet", 64)
    assert [layer.name for layer in same.layers] == [layer.name for layer in symmetric.layers]
    np.testing.assert_allclose(symmetric(images), same(images), atol=1e-6)


def torch_max_pool(x):
    """PyTorch's MaxPool2d(3, stride=2, padding=1) on an NHWC array: -inf padding."""
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    height, width = (x.shape[1] - 1) // 2 + 1, (x.shape[2] - 1) // 2 + 1
    out = np.empty((x.shape[0], height, width, x.shape[3]), x.dtype)
    for i in range(height):
        for j in range(width):
            out[:, i, j] = padded[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("size", [6, 7, 8])
def test_symmetric_max_pool_pads_with_minus_infinity_as_pytorch(size):
    x = rng.normal(-1.0, 1.0, (2, size, size, 3)).astype("float32")  # mostly negative
    inputs = keras.Input((size, size, 3))
    with padding_style("symmetric"):
        model = keras.Model(inputs, max_pool(inputs, name="pool"))
    np.testing.assert_array_equal(model(x).numpy(), torch_max_pool(x))


def test_unknown_padding_is_refused():
    with pytest.raises(ValueError, match="padding must be one of"):
        build_model("mobilenet_v2", padding="reflect")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v1", "xception"])
def test_symmetric_int8_files_run_whole_inside_xnnpack(name):
    size = ODD_SIZES.get(name, 64) + 1
    model = build_model(name, input_shape=(size, size, 3), num_classes=10, padding="symmetric",
                        include_preprocessing=True)
    images = rng.integers(0, 256, (4, size, size, 3)).astype(np.float32)
    randomize(model, rng, images)

    def calibration():
        for image in images:
            yield [image[None]]

    for mode in ("float32", "int8"):
        assert delegate_partitions(export_tflite(model, mode, calibration)) == (1, []), mode
