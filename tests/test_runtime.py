"""The runtime section's dtype policy holds for one run only: a run started from Python leaves
Keras' global policy as it found it, whether it ends or fails."""

import keras
import pytest

import mobilenets
from mobilenets import config as config_lib
from mobilenets import runtime
from mobilenets.errors import UserError


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_precision_sets_the_policy_inside_and_restores_it_after_an_error():
    with pytest.raises(ValueError, match="inside"):
        with runtime.precision("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise ValueError("inside")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_failed_mixed_precision_run_leaves_later_models_in_float32(tmp_path):
    config = config_lib.from_dict({
        "model": {"name": "mobilenet_v2", "alpha": 0.35, "input_shape": [32, 32, 3]},
        "data": {"source": "folder", "dir": str(tmp_path / "missing")},
        "runtime": {"mixed_precision": "mixed_bfloat16"}})
    with pytest.raises(UserError, match="not found"):
        mobilenets.train(config, tmp_path / "run")
    model = mobilenets.build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
