"""MobileNetV4 convolutional models: exact to timm's (the paper's tables) in parameters."""

import numpy as np
import pytest

from mobilenets import build_model

# timm 1.0's mobilenetv4_conv_{small,medium,large}, 1000 classes, trainable parameters
# (measured with timm's own models; BatchNorm statistics not counted).
TIMM_PARAMETERS = {"conv_small": 3_774_024, "conv_medium": 9_715_512,
                   "conv_large": 32_590_864}


@pytest.mark.parametrize("variant", sorted(TIMM_PARAMETERS))
def test_parameters_equal_timm(variant):
    model = build_model("mobilenet_v4", input_shape=(224, 224, 3), num_classes=1000,
                        variant=variant)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == TIMM_PARAMETERS[variant]


def test_small_width_runs_at_tiny_inputs():
    model = build_model("mobilenet_v4", input_shape=(32, 32, 1), num_classes=10,
                        variant="conv_small", alpha=0.5)
    out = model(np.zeros((2, 32, 32, 1), np.float32))
    assert out.shape == (2, 10)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="variant must be one of conv_small"):
        build_model("mobilenet_v4", input_shape=(32, 32, 3), variant="hybrid_medium")
