"""Every registered family: shapes at small sizes, options, naming rules, training, save/load."""

import keras
import numpy as np
import pytest

from mobilenets import build_model, list_models
from mobilenets.models.registry import min_input_size, model_options
from tests.tiers import families

# Small widths keep these tests fast; each is a valid option of its family.
SMALL = {
    "efficientnet_lite": {"alpha": 0.5},
    "mobilenet_v1": {"alpha": 0.25},
    "mobilenet_v2": {"alpha": 0.35},
    "mobilenet_v3_large": {"alpha": 0.75},
    "mobilenet_v3_small": {"alpha": 0.75},
    "mobilenet_v4": {"alpha": 0.5},
    "mobilenext": {"alpha": 0.35},
    "shufflenet_v1": {"alpha": 0.25, "groups": 3},
    "shufflenet_v2": {"alpha": 0.5},
    "squeezenet": {"alpha": 0.5},
    "xception": {"alpha": 0.25},
}
ALL = list_models()


def small(name, size=32, channels=3, **options):
    size = max(size, min_input_size(name))
    return build_model(name, input_shape=(size, size, channels), num_classes=7,
                       **{**SMALL[name], **options})


def test_every_family_is_registered():
    assert ALL == ["efficientnet_lite", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large",
                   "mobilenet_v3_small", "mobilenet_v4", "mobilenext", "shufflenet_v1",
                   "shufflenet_v2", "squeezenet", "xception"]
    assert set(SMALL) == set(ALL)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_builds_small_inputs(name, size, channels):
    model = small(name, size, channels)
    images = np.random.default_rng(0).uniform(0, 1, (2, *model.input_shape[1:]))
    probabilities = model(images.astype("float32"), training=False).numpy()
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_feature_extractor_and_pooling(name):
    features = small(name, 64, include_top=False)
    assert len(features.output_shape) == 4
    pooled = small(name, 64, include_top=False, pooling="max")
    # MobileNetV4 keeps its 1280-channel head on the pooled features, as timm does
    width = 1280 if name == "mobilenet_v4" else features.output_shape[-1]
    assert pooled.output_shape == (None, width)
    assert "max_pool" in [layer.name for layer in pooled.layers]


@pytest.mark.parametrize("name", ALL)
def test_only_named_builtin_layers(name):
    """No Lambda and no raw tensor arithmetic (which would appear as non-Layer operations);
    every layer named in lowercase, deterministically."""
    model = small(name, include_preprocessing=True, classifier_activation=None)
    for operation in model.operations:
        assert isinstance(operation, keras.layers.Layer), operation
        assert not isinstance(operation, keras.layers.Lambda), operation.name
        assert type(operation).__module__.startswith(("keras.", "mobilenets.")), operation
    names = [layer.name for layer in model.layers]
    assert all(n == n.lower() and " " not in n for n in names)
    assert len(set(names)) == len(names)
    keras.backend.clear_session()  # a fresh session must give the same names
    assert [layer.name for layer in small(name, include_preprocessing=True,
                                          classifier_activation=None).layers] == names
    assert names[:2] == ["input", "preprocess"] and "logits" in names


@pytest.mark.parametrize("name", ALL)
def test_preprocessing_maps_pixels_to_minus_one_one(name):
    plain = small(name)
    baked = small(name, include_preprocessing=True)
    baked.set_weights(plain.get_weights())  # Rescaling has no weights
    images = np.random.default_rng(1).uniform(-1, 1, (2, *plain.input_shape[1:]))
    np.testing.assert_allclose(baked((images + 1) * 127.5, training=False),
                               plain(images, training=False), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", families())
def test_one_training_step_changes_weights_and_loss_is_finite(name):
    model = small(name, classifier_activation=None)
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(2).uniform(-1, 1, (4, *model.input_shape[1:]))
    before = [w.numpy().copy() for w in model.trainable_weights]
    loss = model.train_on_batch(images.astype("float32"), np.array([0, 1, 2, 3]))
    assert np.isfinite(loss)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights)]
    assert all(changed), [w.path for w, c in zip(model.trainable_weights, changed) if not c]


@pytest.mark.parametrize("name", families())
def test_keras_file_round_trip(name, tmp_path):
    model = small(name, include_preprocessing=True)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = np.random.default_rng(3).uniform(0, 255, (2, *model.input_shape[1:]))
    np.testing.assert_allclose(loaded(images, training=False), model(images, training=False),
                               rtol=1e-6, atol=1e-7)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_unknown_model_lists_valid_names_and_suggests():
    with pytest.raises(ValueError, match=r"unknown model 'mobilenetv2'.*did you mean "
                                         r"'mobilenet_v2'.*valid models: efficientnet_lite, "
                                         r"mobilenet_v1, "):
        build_model("mobilenetv2")


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_lists_valid_options(name):
    with pytest.raises(ValueError, match=r"unknown option\(s\) 'num_class'.*did you mean "
                                         r"'num_classes'.*valid options: input_shape, "):
        build_model(name, num_class=10)
    assert "alpha" in model_options(name)


@pytest.mark.parametrize("options, message", [
    ({"alpha": 0}, "alpha must be > 0"),
    ({"input_shape": (32, 32)}, "input_shape must be"),
    ({"input_shape": (32, 32, 4)}, "channels must be 1 or 3"),
    ({"input_shape": (16, 16, 3)}, "at least 32x32"),
    ({"num_classes": 0}, "num_classes must be a positive integer"),
    ({"pooling": "mean"}, "pooling must be one of"),
    ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
    ({"classifier_activation": "softmaxx"}, "classifier_activation"),
])
def test_bad_common_values(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("mobilenet_v2", **options)


@pytest.mark.parametrize("name, options, message", [
    ("xception", {"input_shape": (64, 64, 3)}, "at least 71x71"),
    ("shufflenet_v1", {"groups": 5}, r"groups must be one of \[1, 2, 3, 4, 8\]"),
    ("shufflenet_v1", {"alpha": 0.75}, "must be one of"),
    ("shufflenet_v2", {"alpha": 0.75}, r"must be one of \[0.5, 1.0, 1.5, 2.0\]"),
    ("squeezenet", {"version": "1.2"}, "version must be one of"),
    ("squeezenet", {"bypass": "full"}, "bypass must be one of"),
    ("mobilenext", {"identity_ratio": 0.0}, "identity_ratio must be in"),
    ("mobilenet_v1", {"depth_multiplier": 0}, "depth_multiplier must be a positive integer"),
])
def test_bad_family_values(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, **options)
