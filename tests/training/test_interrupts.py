"""SIGINT and SIGTERM: during training a request to stop at the end of the step (or of the
epoch, for one that comes during validation); outside training an immediate stop."""

import os
import signal
import time

import pytest

from mobilenets import interrupts
from mobilenets.errors import Interrupted
from mobilenets.training.callbacks import StopOnSignal


class Checkpoints:
    step = 16

    def __init__(self):
        self.saved = []

    def save(self):
        self.saved.append(self.step)


def test_a_signal_during_validation_stops_training_at_the_epochs_end():
    checkpoints = Checkpoints()
    callback = StopOnSignal(checkpoints)
    with interrupts.handled(), interrupts.training():
        callback.on_epoch_end(0)  # nothing asked: nothing happens
        os.kill(os.getpid(), signal.SIGTERM)  # recorded, not raised: training is on
        with pytest.raises(Interrupted, match="stopped by SIGTERM at step 16, its checkpoint "
                                              "written") as caught:
            callback.on_epoch_end(0)
    assert checkpoints.saved == [16] and caught.value.signal_number == signal.SIGTERM
    assert interrupts.requested() is None  # cleared with the handlers


def test_outside_training_a_signal_stops_at_once_and_handlers_are_restored():
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="stopped by SIGINT"):
        with interrupts.handled():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # interrupted long before
    assert signal.getsignal(signal.SIGINT) is before
