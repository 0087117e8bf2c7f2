"""Schedules, optimizers and weight decay."""

import math

import keras
import numpy as np
import pytest

from mobilenets import config as config_lib
from mobilenets.models.registry import build_model
from mobilenets.training import optimizer as optimization

STEPS = 10  # steps per epoch in the schedule tests


def train_section(**keys):
    """The checked train section of a config holding `keys`."""
    return config_lib.from_dict({"train": keys}).train


def schedule_of(optimizer):
    """The learning-rate schedule an optimizer serializes (what a saved model keeps)."""
    return keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])


def rates(schedule, steps):
    return np.array([float(schedule(step)) for step in steps])


def test_exponential_schedule_is_the_v2_papers():
    # V2 paper: 0.045, x0.98 per epoch; here after 2 warmup epochs.
    schedule = optimization.LearningRate(0.045, "exponential", STEPS, 100 * STEPS,
                                     warmup_steps=2 * STEPS)
    np.testing.assert_allclose(rates(schedule, [0, 5, 10, 20, 29, 30, 20 + 10 * 50]),
                               [0.0, 0.045 * 5 / 20, 0.045 * 10 / 20, 0.045, 0.045,
                                0.045 * 0.98, 0.045 * 0.98 ** 50], rtol=1e-5)


def test_cosine_step_and_constant_schedules():
    cosine = optimization.LearningRate(0.1, "cosine", STEPS, 100, minimum=0.01)
    np.testing.assert_allclose(rates(cosine, [0, 50, 100, 150]),
                               [0.1, 0.01 + 0.09 * 0.5, 0.01, 0.01], rtol=1e-5)
    quarter = 0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi / 4))
    np.testing.assert_allclose(rates(cosine, [25]), [quarter], rtol=1e-5)
    linear = optimization.LearningRate(0.5, "linear", STEPS, 110, warmup_steps=10)
    np.testing.assert_allclose(rates(linear, [5, 10, 60, 110, 200]), [0.25, 0.5, 0.25, 0, 0],
                               atol=1e-6)
    # DeepLab's poly: 0.007 * (1 - step / total) ** 0.9
    poly = optimization.LearningRate(0.007, "poly", STEPS, 100)
    np.testing.assert_allclose(rates(poly, [0, 50, 75, 100, 120]),
                               [0.007, 0.007 * 0.5**0.9, 0.007 * 0.25**0.9, 0, 0], atol=1e-9)
    step = optimization.LearningRate(1.0, "step", STEPS, 100, step_epochs=[3, 6], step_factor=0.1)
    np.testing.assert_allclose(rates(step, [29, 30, 59, 60, 99]),
                               [1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-5)
    constant = optimization.LearningRate(0.3, "constant", STEPS, 100, warmup_steps=10)
    np.testing.assert_allclose(rates(constant, [0, 5, 10, 99]), [0.0, 0.15, 0.3, 0.3], rtol=1e-5)


def test_schedule_survives_save_and_load(tmp_path):
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    train = train_section(schedule="cosine", learning_rate=0.2, warmup_epochs=1, epochs=4)
    model.compile(optimizer=optimization.make_optimizer(train, STEPS, model), loss="mse")
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    schedule = schedule_of(loaded.optimizer)
    assert isinstance(schedule, optimization.LearningRate)
    np.testing.assert_allclose(rates(schedule, [5, 10, 25, 40]), [0.1, 0.2, 0.1, 0.0],
                               atol=1e-6)


def test_batch_size_scales_the_learning_rate():
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    train = train_section(schedule="constant", learning_rate=0.1, batch_size=512,
                          base_batch_size=256)
    optimizer = optimization.make_optimizer(train, STEPS, model)
    assert float(schedule_of(optimizer)(3)) == pytest.approx(0.2)


def test_l2_weight_decay_is_tf_slims():
    """wd = 4e-5 adds wd / 2 * |w|^2 for conv and dense kernels only (not depthwise, BN, bias)."""
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    optimization.make_optimizer(config_lib.TrainConfig(weight_decay=4e-5), STEPS, model)
    kernels = [layer.kernel for layer in model.layers
               if type(layer).__name__ in ("Conv2D", "Dense")]
    assert len(kernels) == 1 + 13 + 1  # stem, 13 pointwise, logits
    expected = sum(2e-5 * float(np.sum(np.square(k.numpy()))) for k in kernels)
    model(np.zeros((1, 32, 32, 1), np.float32))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)


def test_decoupled_weight_decay_skips_bn_and_depthwise():
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    train = train_section(optimizer="adamw", weight_decay=0.05, weight_decay_mode="decoupled")
    optimizer = optimization.make_optimizer(train, STEPS, model)
    assert not model.losses
    optimizer.build(model.trainable_variables)
    decayed = {v.path for v in model.trainable_variables if optimizer._use_weight_decay(v)}
    expected = {f"{layer.name}/kernel" for layer in model.layers
                if type(layer).__name__ in ("Conv2D", "Dense")}
    assert decayed == expected and len(expected) == 15 and "block1_pw_conv/kernel" in expected


def test_optimizers_follow_the_config():
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    rmsprop = optimization.make_optimizer(
        train_section(optimizer={"type": "rmsprop",
                                 "rmsprop": {"rho": 0.8, "momentum": 0.7, "epsilon": 0.5}},
                      ema_decay=0.9999, clip_norm=1.0), STEPS, model)
    assert isinstance(rmsprop, keras.optimizers.RMSprop)
    assert (rmsprop.rho, rmsprop.momentum, rmsprop.epsilon) == (0.8, 0.7, 0.5)
    assert rmsprop.use_ema and rmsprop.ema_momentum == 0.9999 and rmsprop.global_clipnorm == 1.0
    sgd = optimization.make_optimizer(
        train_section(optimizer={"type": "sgd", "sgd": {"nesterov": True, "momentum": 0.8}}),
        STEPS, model)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.8
    assert not sgd.use_ema


def test_epsilon_and_betas_default_per_optimizer():
    """Each optimizer's epsilon defaults to its own: TF-slim's 1.0 for RMSProp (the V1 and V2
    papers'), Keras' 1e-7 for Adam and AdamW (not RMSProp's 1.0)."""
    model = build_model("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 1), num_classes=3)
    epsilons = {name: optimization.make_optimizer(train_section(optimizer=name), STEPS,
                                                  model).epsilon
                for name in ("rmsprop", "adam", "adamw")}
    assert epsilons == {"rmsprop": 1.0, "adam": 1e-7, "adamw": 1e-7}
    adamw = optimization.make_optimizer(
        train_section(optimizer={"type": "adamw", "adamw": {"beta_1": 0.6, "epsilon": 1e-3}}),
        STEPS, model)
    assert (adamw.beta_1, adamw.beta_2, adamw.epsilon) == (0.6, 0.999, 1e-3)
