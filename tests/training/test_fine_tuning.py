"""Fine-tuning: a frozen backbone for the first epochs (BatchNorm in inference mode), a lower
learning rate for the backbone, and the schedule's warm restart when it unfreezes."""

import warnings

import numpy as np
import pytest

from mobilenets import config as config_lib
from mobilenets import experiment, tasks
from mobilenets.cli import train_main
from mobilenets.errors import UserError
from mobilenets.training import optimizer as optimization
from tests.conftest import TINY

STEPS = 256 // 32


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory):
    root = tmp_path_factory.mktemp("fine_tune")
    config = root / "fine_tune.yaml"
    config.write_text(TINY.replace("  checkpoint_steps: 5\n", "  checkpoint_steps: 5\n"
                                   "  keep_checkpoints: 10\n  freeze_backbone_epochs: 1\n"
                                   "  backbone_lr_multiplier: 0.5\n  restart_schedule: true\n")
                      .replace("  ema_decay: 0.9\n", "").replace("[float32, int8]", "[]"))
    workdir = root / "work"
    assert train_main(["--config", str(config), "--workdir", str(workdir)]) == 0
    return config, workdir


def weights_at(config, workdir, step):
    """{layer: weights} of the run's checkpoint at `step`."""
    loaded = config_lib.load(config)
    model = experiment.build(tasks.get("classification"), loaded.model, 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checkpoint's optimizer state is not loaded here
        model.load_weights(workdir / f"checkpoints/ckpt-{step:09d}.weights.h5")
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers}


@pytest.mark.slow  # an end-to-end run
def test_the_backbone_stays_frozen_then_trains(fine_tuned):
    config, workdir = fine_tuned
    mid, end_frozen, last = (weights_at(config, workdir, step) for step in (5, STEPS, 2 * STEPS))
    for layer in ("stem_conv", "block5_expand_conv", "head_bn"):  # BatchNorm statistics too
        for a, b in zip(mid[layer], end_frozen[layer]):
            np.testing.assert_array_equal(a, b, err_msg=layer)
        assert not np.array_equal(end_frozen[layer][0], last[layer][0]), layer
    assert not np.array_equal(mid["logits"][0], end_frozen["logits"][0])


def test_the_schedule_restarts_when_the_backbone_unfreezes():
    schedule = optimization.LearningRate(0.1, "cosine", 10, 100, warmup_steps=10,
                                         restart_step=40)
    rates = np.array([float(schedule(step)) for step in (0, 5, 10, 25, 39, 40, 45, 50, 100)])
    first = [0.0, 0.05, 0.1, 0.1 * 0.5 * (1 + np.cos(np.pi * 15 / 30)),
             0.1 * 0.5 * (1 + np.cos(np.pi * 29 / 30))]
    second = [0.0, 0.05, 0.1, 0.0]  # warmup again from step 40, cosine to 0 at step 100
    np.testing.assert_allclose(rates, first + second, atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    (["train.epochs=2", "train.freeze_backbone_epochs=2"], "must be below train.epochs"),
    (["train.restart_schedule=true"], "set train.freeze_backbone_epochs"),
    (["train.backbone_lr_multiplier=0.1", "qat.enabled=true"], "not with qat.enabled"),
])
def test_fine_tuning_options_that_cannot_work_are_refused(tmp_path, overrides, message):
    path = tmp_path / "c.yaml"
    path.write_text("")
    with pytest.raises(UserError, match=message):
        config_lib.load(path, overrides)
