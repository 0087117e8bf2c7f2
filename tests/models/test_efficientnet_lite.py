"""EfficientNet-Lite: exact to timm's tf_efficientnet_lite* (the reference code) in parameters."""

import numpy as np
import pytest

from mobilenets import build_model
from mobilenets.models.efficientnet_lite import VARIANTS

# timm 1.0's tf_efficientnet_lite0-4, 1000 classes, trainable parameters.
TIMM_PARAMETERS = {"lite0": 4_652_008, "lite1": 5_416_680, "lite2": 6_092_072,
                   "lite3": 8_197_096, "lite4": 13_006_568}


@pytest.mark.parametrize("variant", sorted(TIMM_PARAMETERS))
def test_parameters_equal_timm(variant):
    size = VARIANTS[variant][2]
    model = build_model("efficientnet_lite", input_shape=(size, size, 3), num_classes=1000,
                        variant=variant)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == TIMM_PARAMETERS[variant]


def test_depth_scales_all_but_the_first_and_last_stages():
    """Lite4 (depth 1.8): B0's 1, 2, 2, 3, 3, 4, 1 layers become 1, 4, 4, 6, 6, 8, 1."""
    model = build_model("efficientnet_lite", input_shape=(64, 64, 3), variant="lite4")
    projections = [layer for layer in model.layers if layer.name.endswith("_project_conv")]
    assert len(projections) == 1 + 4 + 4 + 6 + 6 + 8 + 1
    assert model.get_layer("dropout").rate == 0.3
    with pytest.raises(ValueError, match="variant must be one of lite0"):
        build_model("efficientnet_lite", input_shape=(32, 32, 3), variant="b0")
