"""The training loop's callbacks: checkpoints and resume, EMA weights, the NaN guard and
throughput."""

import logging
import pathlib
import signal
import time

import keras
import numpy as np

from mobilenets import artifacts, compat, files, interrupts
from mobilenets.errors import CheckpointMismatch, Interrupted

log = logging.getLogger("mobilenets")


class Checkpointer(keras.callbacks.Callback):
    """Saves model and optimizer state (EMA and step included) every `every_steps` steps and
    at each epoch end, atomically, keeping the last `keep`; keeps the best model by the
    `monitor` log entry (the task's; `mode` max: higher is better, min: lower). `restore`
    resumes from the newest checkpoint that loads.
    `seconds` is the training time of the whole run, earlier sessions included (each counted
    up to its last checkpoint).

    `target` is the model saved (default: the model being fit); a QAT run whose ranges are
    frozen fits a wrapper around its model and saves the model itself. `save_directory`
    (default `directory`) is where saves go: a multi-worker run's other workers restore from
    the chief's checkpoints but save (which they must, in step: reading tf_keras' BatchNorm
    statistics is a collective op) into a scratch folder.
    """

    def __init__(self, directory, every_steps=0, keep=3, target=None, save_directory=None,
                 monitor="val_accuracy", mode="max"):
        super().__init__()
        self.target, self.monitor, self.mode = target, monitor, mode
        self.directory = pathlib.Path(directory)
        self.save_directory = pathlib.Path(save_directory or directory)
        self.every_steps, self.keep = every_steps, keep
        self.best = self.best_epoch = None
        self.diverged = False
        self._last_saved = None
        self._earlier_seconds, self._started = 0.0, None

    def checkpoints(self):
        return sorted(self.directory.glob("ckpt-*.weights.h5"))

    def restore(self, model):
        """Loads the newest readable checkpoint; returns its global step (0 if none)."""
        state_file = self.directory / "state.json"
        if state_file.is_file():
            state = files.read_json(state_file)
            if not state:
                log.warning("%s is damaged; the best model so far will be chosen again from "
                            "the epochs to come", state_file)
            self.best, self.best_epoch = state.get("best"), state.get("best_epoch")
            self._earlier_seconds = state.get("seconds", 0.0)
        checkpoints = self.checkpoints()
        for path in reversed(checkpoints):
            try:
                model.optimizer.build(model.trainable_variables)
                model.load_weights(path)
            except Exception as error:  # noqa: BLE001 - a damaged file: fall back to older
                log.warning("checkpoint %s is unreadable (%s); trying an older one", path,
                            str(error).splitlines()[0] if str(error) else type(error).__name__)
                continue
            return int(model.optimizer.iterations.numpy())
        if checkpoints:  # never train over (and then delete) another run's checkpoints
            raise CheckpointMismatch(f"no checkpoint in {self.directory} fits this model (was "
                                     "the run started with another model config?); use another "
                                     "--workdir or move the checkpoints away")
        return 0

    @property
    def seconds(self):
        started = self._started
        return self._earlier_seconds + (time.perf_counter() - started if started else 0.0)

    def on_train_begin(self, logs=None):
        if self._started is None:  # the first of this session's fits
            self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if (self.every_steps and self.step % self.every_steps == 0
                and not last_batch(self, batch)):  # the epoch's end commits that step
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        """The epoch's end as one transaction, committed by its checkpoint: the history row
        (CSVLogger, an earlier callback) and the best-model candidate are written first, so
        a run stopped before the checkpoint resumes from the one before and redoes the
        epoch, rewriting both (forget_epochs_after drops the row; the candidate is the same)."""
        value = (logs or {}).get(self.monitor)
        if value is not None and self.better(value):
            target = self.target or self.model
            with ema_weights(self.model), files.atomic_path(
                    self.best_path(target), variable_bytes(target.weights)) as tmp:
                artifacts.save(target, tmp)
            self.best, self.best_epoch = float(value), epoch + 1
            self._write_state()
        self.save()

    def best_path(self, target):
        """Where the best model is kept: `best.keras`, or `best.h5` for a tf_keras model (a
        QAT run's, or the twin a multi-worker run trains)."""
        name = "best.keras" if isinstance(target, keras.Model) else "best.h5"
        return self.save_directory / name

    def better(self, value):
        """Whether `value` of the monitored entry beats the best so far."""
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    @property
    def step(self):
        return int(self.model.optimizer.iterations.numpy())

    def save(self):
        step = self.step
        if self.diverged or step == self._last_saved:
            return
        target = self.target or self.model
        variables = target.optimizer.variables
        needed = variable_bytes(target.weights) + variable_bytes(
            variables() if callable(variables) else variables)  # tf_keras': a method
        with files.atomic_path(self.save_directory / f"ckpt-{step:09d}.weights.h5",
                               needed) as tmp:
            target.save_weights(tmp)
        self._last_saved = step
        self._write_state()
        for old in sorted(self.save_directory.glob("ckpt-*.weights.h5"))[:-self.keep]:
            old.unlink()

    def _write_state(self):
        files.write_json(self.save_directory / "state.json",
                         {"step": self._last_saved, "best": self.best,
                          "best_epoch": self.best_epoch, "seconds": round(self.seconds, 1)})


class SkippedImages(keras.callbacks.Callback):
    """Says at an epoch's end how many training images were skipped so far because they no
    longer decode (`pipeline.Skipped`: changed on disk since the start-up check)."""

    def __init__(self, skipped):
        super().__init__()
        self.skipped, self.reported = skipped, 0

    def on_epoch_end(self, epoch, logs=None):
        count = self.skipped.count()
        if count > self.reported:
            log.warning("skipped %d training image(s) so far that no longer decode (changed on "
                        "disk since the start-up check; data.corrupt_images: skip)", count)
            self.reported = count


class StopOnSignal(keras.callbacks.Callback):
    """Ends training at the end of the step during which SIGINT or SIGTERM came (see
    `interrupts`), after `checkpointer` has saved that step: no step is lost; a signal during
    an epoch's last step or its validation ends it at the epoch's end (a checkpoint at the
    last step would skip the epoch's end on resume). It raises rather than setting
    `stop_training`, which would still validate and end the epoch (a history row and a
    best-model candidate for half an epoch), and comes last among the callbacks, so that an
    epoch's end is written (history row, best model, checkpoint) before it stops."""

    def __init__(self, checkpointer):
        super().__init__()
        self.checkpointer = checkpointer

    def on_train_batch_end(self, batch, logs=None):
        if not last_batch(self, batch):  # else at the epoch's end, once it is written
            self._stop_if_asked()

    def on_epoch_end(self, epoch, logs=None):
        self._stop_if_asked()

    def _stop_if_asked(self):
        number = interrupts.requested()
        if number is None:
            return
        self.checkpointer.save()
        raise Interrupted(f"stopped by {signal.Signals(number).name} at step "
                          f"{self.checkpointer.step}, its checkpoint written; run the same "
                          "command again to resume there", number)


def variable_bytes(variables):
    """What `variables` take in a file, roughly (their values; the file adds a little)."""
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype.name if hasattr(v.dtype, "name")
                                                   else v.dtype).itemsize for v in variables)


def last_batch(callback, batch):
    """Whether `batch` (its index in this `fit`'s epoch) ends the epoch."""
    return batch + 1 == callback.params.get("steps")


class ema_weights:  # noqa: N801 - a context manager used like a function
    """Within the block, the model holds the optimizer's EMA weights (no-op without EMA)."""

    def __init__(self, model):
        self.model = model
        optimizer = model.optimizer
        self.active = getattr(optimizer, "use_ema", False)
        if self.active:
            self.variables, self.averages = compat.ema_variables(optimizer)

    def __enter__(self):
        if self.active:
            self.saved = [v.numpy() for v in self.variables]
            for variable, average in zip(self.variables, self.averages):
                variable.assign(average)

    def __exit__(self, *exc):
        if self.active:
            for variable, value in zip(self.variables, self.saved):
                variable.assign(value)


class StepSeeds(keras.callbacks.Callback):
    """Seeds the model's random layers (Dropout) by the global step before each step, so that
    a resumed run draws what the uninterrupted one did: Keras keeps their seed generators'
    states out of saved weights, so a checkpoint does not restore them."""

    def __init__(self, seed):
        super().__init__()
        self.seed = seed

    def on_train_begin(self, logs=None):
        self.states = [v for v in self.model.variables  # a QAT twin's have no path (none)
                       if getattr(v, "path", "").endswith("seed_generator_state")]

    def on_train_batch_begin(self, batch, logs=None):
        if self.states:
            step = int(self.model.optimizer.iterations.numpy())
            for index, state in enumerate(self.states):
                state.assign(np.array([self.seed + index, step], state.dtype))


class Guard(keras.callbacks.Callback):
    """Stops at the first NaN or infinite loss, before the step's weights are checkpointed."""

    def __init__(self, checkpointer):
        super().__init__()
        self.checkpointer = checkpointer
        self.bad_step = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.bad_step = int(self.model.optimizer.iterations.numpy())
            self.checkpointer.diverged = True
            self.model.stop_training = True


class Throughput(keras.callbacks.Callback):
    """Training images per second of wall-clock time, and milliseconds of CPU time (all the
    process's threads) per image, from the end of each epoch's first batch to its last (so
    tracing and validation are excluded, the input pipeline and callbacks included)."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.images, self.seconds, self.cpu_seconds = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._first = self._last = None
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        now = (time.perf_counter(), time.process_time())
        if self._first is None:
            self._first = now
        else:
            self._batches += 1
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        if self._batches:
            self.images += self._batches * self.batch_size
            self.seconds += self._last[0] - self._first[0]
            self.cpu_seconds += self._last[1] - self._first[1]

    @property
    def images_per_second(self):
        return self.images / self.seconds if self.seconds else None

    @property
    def cpu_ms_per_image(self):
        return 1000 * self.cpu_seconds / self.images if self.images else None


class KeepLiveWeights(keras.callbacks.Callback):
    """Keeps the live (not EMA) weights of a `fit` that ends mid-run: Keras' `fit` overwrites
    the weights with their EMA when it returns, which is right only for the last call."""

    def on_epoch_end(self, epoch, logs=None):
        self.values = [v.numpy() for v in self.model.trainable_variables]

    def restore(self):
        for variable, value in zip(self.model.trainable_variables, self.values):
            variable.assign(value)
