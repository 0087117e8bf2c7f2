"""Our builders against keras.applications: equal parameter counts and identical computation."""

import numpy as np
import pytest

from mobilenets import build_model, profile
from tests.reference import KERAS_TWINS, copy_weights, randomize, twin_id


@pytest.mark.parametrize("twin", KERAS_TWINS, ids=twin_id)
def test_param_counts_equal_keras_applications(twin):
    name, options, constructor, keras_options = twin
    size, second = (299, 150) if name == "xception" else (224, 160)
    ours = build_model(name, **options, input_shape=(size, size, 3))
    theirs = constructor(weights=None, input_shape=(size, size, 3), **keras_options)
    assert ours.count_params() == theirs.count_params()
    assert profile(ours)["macs"] == profile(theirs)["macs"]
    assert (sum(int(np.prod(w.shape)) for w in ours.trainable_weights)
            == sum(int(np.prod(w.shape)) for w in theirs.trainable_weights))
    ours = build_model(name, **options, input_shape=(second, second, 3), include_top=False)
    theirs = constructor(weights=None, input_shape=(second, second, 3), include_top=False,
                         **keras_options)
    assert ours.count_params() == theirs.count_params()
    assert ours.output_shape == theirs.output_shape


# One variant per architecture path: V1 with its depth multiplier, V2 below and above 1.0, V3
# with and without SE / hard-swish, Xception.
SAME_COMPUTATION = [twin for twin in KERAS_TWINS if twin_id(twin) in {
    "mobilenet_v1-alpha=0.5", "mobilenet_v2-alpha=0.35", "mobilenet_v2-alpha=1.4",
    "mobilenet_v3_large-alpha=0.75", "mobilenet_v3_small-alpha=1.0",
    "mobilenet_v3_large-minimalistic=True", "xception"}]


@pytest.mark.parametrize("twin", SAME_COMPUTATION, ids=twin_id)
def test_same_computation_as_keras_applications(twin):
    """Op for op: with keras.applications' (randomized) weights copied in layer order, our model
    gives the same outputs, so padding, strides, activations and SE placement all agree."""
    name, options, constructor, keras_options = twin
    shape = (96, 96, 3)
    theirs = constructor(weights=None, input_shape=shape, classifier_activation=None,
                         **keras_options)
    ours = build_model(name, **options, input_shape=shape, classifier_activation=None)
    rng = np.random.default_rng(0)
    randomize(theirs, rng, rng.uniform(-1.0, 1.0, (8, *shape)).astype("float32"))
    copy_weights(theirs, ours)
    images = rng.uniform(-1.0, 1.0, (2, *shape)).astype("float32")
    expected = theirs(images, training=False).numpy()
    actual = ours(images, training=False).numpy()
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the outputs depend on the input
    # Rounding differs (our hard-swish is (x / 6) * relu6(x + 3), theirs x * relu6(x + 3) / 6,
    # and oneDNN's kernels differ by CPU): V3 Small's logits of ~3 differed by up to 2e-5 on
    # an AVX-512 machine.
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=5e-5)


def test_v1_depth_multiplier_matches_keras_applications():
    from keras import applications

    ours = build_model("mobilenet_v1", alpha=0.5, depth_multiplier=2, input_shape=(128, 128, 3))
    theirs = applications.MobileNet(weights=None, alpha=0.5, depth_multiplier=2,
                                    input_shape=(128, 128, 3))
    assert ours.count_params() == theirs.count_params()
