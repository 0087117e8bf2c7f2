"""The training loop: model, optimizer and schedule from the config, Keras `fit`, resume.

`train(config, workdir)` runs train -> evaluate -> export and returns the final metrics. Run it
again on the same workdir and it resumes from the last good checkpoint (see `Checkpointer`).
"""

import json
import logging
import math
import pathlib
import sys
import time

import keras
import numpy as np
import tf_keras
from keras import ops

from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets import files, qat, runtime
from mobilenets.errors import UserError
from mobilenets.models.registry import build_model

log = logging.getLogger("mobilenets")


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the message says at which step and what to try."""


@keras.saving.register_keras_serializable(package="mobilenets")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak`, then `kind` decay, as a function of the step.

    exponential: peak * decay_rate ** floor(epochs / decay_epochs) (the V2 paper: x0.98 per
    epoch); cosine, or linear (ShuffleNet), down to `minimum` at `total_steps`; step: x `step_factor` at each of
    `step_epochs`; constant. (Keras' own schedules offer warmup only for cosine.)
    """

    def __init__(self, peak, kind, steps_per_epoch, total_steps, warmup_steps=0,
                 decay_rate=0.98, decay_epochs=1.0, step_epochs=(), step_factor=0.1, minimum=0.0):
        self.peak, self.kind = float(peak), kind
        self.steps_per_epoch, self.total_steps = int(steps_per_epoch), int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay_rate, self.decay_epochs = float(decay_rate), float(decay_epochs)
        self.step_epochs, self.step_factor = [float(e) for e in step_epochs], float(step_factor)
        self.minimum = float(minimum)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        after = ops.maximum(step - self.warmup_steps, 0.0)
        if self.kind == "exponential":
            epochs = ops.floor(after / (self.steps_per_epoch * self.decay_epochs))
            rate = self.peak * ops.power(self.decay_rate, epochs)
        elif self.kind == "cosine":
            progress = ops.clip(after / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
            rate = self.minimum + (self.peak - self.minimum) * 0.5 * (
                1.0 + ops.cos(math.pi * progress))
        elif self.kind == "linear":
            progress = ops.clip(after / max(1, self.total_steps - self.warmup_steps), 0.0, 1.0)
            rate = self.peak + (self.minimum - self.peak) * progress
        elif self.kind == "step":
            epoch = step / self.steps_per_epoch
            passed = sum(ops.cast(epoch >= e, "float32") for e in self.step_epochs)
            rate = self.peak * ops.power(self.step_factor, passed)
        else:
            rate = ops.convert_to_tensor(self.peak)
        if self.warmup_steps:
            rate = ops.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, rate)
        return rate

    def get_config(self):
        return dict(peak=self.peak, kind=self.kind, steps_per_epoch=self.steps_per_epoch,
                    total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                    decay_rate=self.decay_rate, decay_epochs=self.decay_epochs,
                    step_epochs=self.step_epochs, step_factor=self.step_factor,
                    minimum=self.minimum)


def decayed_weights(model):
    """Conv and dense kernels: the weights that take weight decay (TF-slim leaves depthwise
    kernels, biases and BatchNorm out)."""
    if not isinstance(model, keras.Model):  # the tf_keras twin of a QAT run
        return qat.decayed_weights(model)
    return [layer.kernel for layer in model.layers
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
            and not isinstance(layer, keras.layers.DepthwiseConv2D)]


def make_optimizer(train, steps_per_epoch, model):
    """The optimizer of the `train` section; applies L2 weight decay to `model` if asked.

    `model` is a Keras 3 model, or the tf_keras twin of a QAT run (tf_keras optimizers then).
    """
    k = keras if isinstance(model, keras.Model) else tf_keras
    rate = train.learning_rate
    if train.base_batch_size:
        rate *= train.batch_size / train.base_batch_size
    schedule = LearningRate(
        rate, train.schedule, steps_per_epoch, steps_per_epoch * train.epochs,
        warmup_steps=int(train.warmup_epochs * steps_per_epoch), decay_rate=train.decay_rate,
        decay_epochs=train.decay_epochs, step_epochs=train.step_epochs,
        step_factor=train.step_factor, minimum=train.min_learning_rate)
    if k is tf_keras:
        schedule = qat.Schedule(schedule)
    decoupled = train.weight_decay_mode == "decoupled" and train.weight_decay > 0
    if train.weight_decay_mode == "l2" and train.weight_decay > 0:
        # The paper's weight decay w <- w - lr * wd * w is the gradient of wd / 2 * |w|^2
        # (TF-slim's l2_regularizer(wd)); Keras' L2(l) adds l * |w|^2.
        if k is keras:
            for kernel in decayed_weights(model):
                kernel.regularizer = keras.regularizers.L2(train.weight_decay / 2)
        else:
            qat.add_l2(model, decayed_weights(model), train.weight_decay / 2)
    common = dict(learning_rate=schedule, use_ema=train.ema_decay > 0,
                  ema_momentum=train.ema_decay or 0.99,
                  global_clipnorm=train.clip_norm or None)
    if train.optimizer == "rmsprop":
        optimizer = k.optimizers.RMSprop(rho=train.rho, momentum=train.momentum,
                                             epsilon=train.epsilon, **common)
    elif train.optimizer == "sgd":
        optimizer = k.optimizers.SGD(momentum=train.momentum, nesterov=train.nesterov,
                                         **common)
    elif train.optimizer == "adam":
        optimizer = k.optimizers.Adam(epsilon=train.epsilon, **common)
    else:
        optimizer = k.optimizers.AdamW(epsilon=train.epsilon,
                                           weight_decay=train.weight_decay if decoupled else 0.0,
                                           **common)
    if decoupled:
        if train.optimizer != "adamw":
            optimizer.weight_decay = train.weight_decay
        keep = {id(k) for k in decayed_weights(model)}
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if id(v) not in keep])
    return optimizer


def build(model_config, num_classes, input_shape=None):
    """Builds the configured model with preprocessing inside; loads `init_from` if set."""
    options = dict(model_config.options)
    if model_config.dropout is not None:
        options["dropout"] = model_config.dropout
    try:
        model = build_model(model_config.name, alpha=model_config.alpha,
                            input_shape=tuple(input_shape or model_config.input_shape),
                            num_classes=num_classes, include_preprocessing=True, **options)
    except ValueError as error:
        raise UserError(f"model: {error}") from None
    if model_config.init_from:
        load_weights_from(model, model_config.init_from)
    return model


def load_weights_from(model, path):
    """Copies the weights of the `.keras` file at `path` into `model`, layer by layer (by name).

    A classifier of another size is left as initialized (fine-tuning to new classes).
    """
    if not pathlib.Path(path).is_file():
        raise UserError(f"model.init_from: {path} not found")
    try:
        source = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(f"model.init_from: cannot load {path} as a Keras model ({error})") from None
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    ours = [layer for layer in model.layers if layer.weights]
    missing = [layer.name for layer in ours if layer.name not in theirs]
    mismatched = [layer.name for layer in ours if layer.name in theirs and
                  [w.shape for w in layer.weights] != [w.shape for w in theirs[layer.name].weights]]
    if missing or [n for n in mismatched if n != "logits"]:
        culprit = (missing or mismatched)[0]
        raise UserError(f"model.init_from: {path} ({source.name}) does not match {model.name}: "
                        f"layer {culprit!r} is {'missing' if missing else 'of another shape'}")
    for layer in ours:
        if layer.name not in mismatched:
            layer.set_weights(theirs[layer.name].get_weights())
    if mismatched:
        log.info("init_from: new classifier (%s classes)", model.output_shape[-1])


class Checkpointer(keras.callbacks.Callback):
    """Saves model and optimizer state (EMA and step included) every `every_steps` steps and
    at each epoch end, atomically, keeping the last `keep`; tracks the best model by
    validation accuracy. `restore` resumes from the newest checkpoint that loads.

    `target` is the model saved (default: the model being fit); a QAT run whose ranges are
    frozen fits a wrapper around its model and saves the model itself.
    """

    def __init__(self, directory, every_steps=0, keep=3, target=None):
        super().__init__()
        self.target = target
        self.directory = pathlib.Path(directory)
        self.every_steps, self.keep = every_steps, keep
        self.best = -1.0
        self.diverged = False
        self._last_saved = None

    def checkpoints(self):
        return sorted(self.directory.glob("ckpt-*.weights.h5"))

    def restore(self, model):
        """Loads the newest readable checkpoint; returns its global step (0 if none)."""
        state_file = self.directory / "state.json"
        if state_file.is_file():
            self.best = json.loads(state_file.read_text()).get("best", -1.0)
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
            raise UserError(f"no checkpoint in {self.directory} fits this model (was the run "
                            "started with another model config?); use another --workdir or "
                            "move the checkpoints away")
        return 0

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps and self.step % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        self.save()
        accuracy = (logs or {}).get("val_accuracy")
        if accuracy is not None and accuracy > self.best:
            self.best = float(accuracy)
            target = self.target or self.model
            if isinstance(target, keras.Model):
                with ema_weights(self.model), files.atomic_path(
                        self.directory / "best.keras") as tmp:
                    target.save(tmp)
            else:  # the tf_keras model of a QAT run
                with files.atomic_path(self.directory / "best.h5") as tmp:
                    qat.save(target, tmp)
            self._write_state()

    @property
    def step(self):
        return int(self.model.optimizer.iterations.numpy())

    def save(self):
        step = self.step
        if self.diverged or step == self._last_saved:
            return
        with files.atomic_path(self.directory / f"ckpt-{step:09d}.weights.h5") as tmp:
            (self.target or self.model).save_weights(tmp)
        self._last_saved = step
        self._write_state()
        for old in self.checkpoints()[:-self.keep]:
            old.unlink()

    def _write_state(self):
        files.write_json(self.directory / "state.json",
                         {"step": self._last_saved, "best": self.best})


class ema_weights:  # noqa: N801 - a context manager used like a function
    """Within the block, the model holds the optimizer's EMA weights (no-op without EMA).

    Keras keeps the averages in a private optimizer attribute and offers no public way to
    read them without ending training (`finalize_variable_values`).
    """

    def __init__(self, model):
        self.model = model
        optimizer = model.optimizer
        self.active = getattr(optimizer, "use_ema", False)
        if self.active:
            self.averages = optimizer._model_variables_moving_average
            self.variables = optimizer._trainable_variables

    def __enter__(self):
        if self.active:
            self.saved = [v.numpy() for v in self.variables]
            for variable, average in zip(self.variables, self.averages):
                variable.assign(average)

    def __exit__(self, *exc):
        if self.active:
            for variable, value in zip(self.variables, self.saved):
                variable.assign(value)


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
    """Training images per second, from the end of each epoch's first batch to its last (so
    tracing and validation are excluded, the input pipeline and callbacks included)."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size
        self.images, self.seconds = 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._first = self._last = None
        self._batches = 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self._first is None:
            self._first = now
        else:
            self._batches += 1
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        if self._batches:
            self.images += self._batches * self.batch_size
            self.seconds += self._last - self._first

    @property
    def images_per_second(self):
        return self.images / self.seconds if self.seconds else None


class KeepLiveWeights(keras.callbacks.Callback):
    """Keeps the live (not EMA) weights of a `fit` that ends mid-run: Keras' `fit` overwrites
    the weights with their EMA when it returns, which is right only for the last call."""

    def on_epoch_end(self, epoch, logs=None):
        self.values = [v.numpy() for v in self.model.trainable_variables]

    def restore(self):
        for variable, value in zip(self.model.trainable_variables, self.values):
            variable.assign(value)


def train(config, workdir):
    """Trains, evaluates and exports the experiment `config` in `workdir`; returns metrics."""
    from mobilenets import evaluation, export

    workdir = prepare_workdir(workdir)
    runtime.setup(config.runtime, config.train)
    strategy = runtime.strategy(config.runtime)
    data = data_lib.load(config.data, seed=config.train.seed)
    num_classes = check_classes(config.model, data.class_names)
    shape = tuple(config.model.input_shape)
    batch = config.train.batch_size
    if batch % strategy.num_replicas_in_sync:
        raise UserError(f"train.batch_size {batch} must be a multiple of the "
                        f"{strategy.num_replicas_in_sync} replicas")
    steps_per_epoch = len(data.train) // batch
    if steps_per_epoch == 0:
        raise UserError(f"train.batch_size {batch} is larger than the training set "
                        f"({len(data.train)} images)")
    files.write_text(workdir / "config.yaml", config_lib.dump(config))
    files.write_text(workdir / "labels.txt", "\n".join(data.class_names) + "\n")

    with strategy.scope():
        model = build(config.model, num_classes)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.train.bn_momentum
        if config.qat.enabled:
            model = quantization_aware(model, config, data)
        compile_model(model, make_optimizer(config.train, steps_per_epoch, model), config)
        if config.qat.enabled:  # slots for every variable, whatever is frozen when (resume)
            model.optimizer.build(model.trainable_variables)
    checkpointer = Checkpointer(workdir / "checkpoints", config.train.checkpoint_steps,
                                config.train.keep_checkpoints, target=model)
    start = checkpointer.restore(model)
    total = steps_per_epoch * config.train.epochs
    if start:
        log.info("resumed from epoch %d, step %d (global step %d of %d)",
                 start // steps_per_epoch + 1, start % steps_per_epoch, start, total)
    previous = read_json(workdir / "metrics.json")
    forget_epochs_after(workdir / "history.csv", start // steps_per_epoch)
    guard, throughput = Guard(checkpointer), Throughput(batch)
    k = keras if isinstance(model, keras.Model) else tf_keras  # tf_keras: QAT
    callbacks = [guard, throughput, checkpointer,
                 k.callbacks.CSVLogger(str(workdir / "history.csv"), append=True),
                 k.callbacks.TensorBoard(str(workdir / "logs"))]
    if config.train.ema_decay:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    evaluation_data = data_lib.eval_dataset(data.eval, config.data, shape, num_classes, batch)

    def fit(first_step, epoch, epochs, steps, extra=()):
        stream = data_lib.train_dataset(data.train, config.data, shape, num_classes, batch,
                                        config.train.seed, start_step=first_step)
        fitted, hooks = model, callbacks + list(extra)
        if config.qat.enabled:  # freezing (BatchNorm, ranges) as of this epoch
            fitted = qat.for_epoch(model, epoch, config.qat)
            compile_model(fitted, model.optimizer, config)
            hooks = [qat.KerasCallback(h) if isinstance(h, keras.callbacks.Callback) else h
                     for h in hooks]
        fitted.fit(stream, initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps,
                   shuffle=False, validation_data=evaluation_data, callbacks=hooks,
                   verbose=1 if sys.stdout.isatty() else 2)  # a bar in a terminal, lines in logs

    started = time.perf_counter()
    epoch, step_in_epoch = divmod(start, steps_per_epoch)
    if start < total and step_in_epoch:  # finish the interrupted epoch first
        keep = KeepLiveWeights()
        fit(start, epoch, epoch + 1, steps_per_epoch - step_in_epoch, [keep])
        if epoch + 1 < config.train.epochs and guard.bad_step is None:
            keep.restore()
        epoch += 1
    # One fit per QAT freezing phase (a single fit otherwise).
    for end in [*qat.boundaries(config.qat, epoch, config.train.epochs), config.train.epochs]:
        if epoch < end and guard.bad_step is None:
            fit(epoch * steps_per_epoch, epoch, end, steps_per_epoch)
            epoch = end
    if start >= total and config.train.ema_decay:
        model.optimizer.finalize_variable_values(model.trainable_variables)
    if guard.bad_step is not None:
        last = checkpointer.checkpoints()
        raise TrainingDiverged(
            f"the loss became NaN or infinite at step {guard.bad_step}; the last good "
            f"checkpoint is {last[-1] if last else 'none'}. Try a lower train.learning_rate, "
            "train.warmup_epochs, or train.clip_norm (e.g. 1.0), then run the same command.")
    train_seconds = time.perf_counter() - started

    if config.qat.enabled:
        with files.atomic_path(workdir / "model_qat.h5") as tmp:
            qat.save(model, tmp)
    else:
        with files.atomic_path(workdir / "model.keras") as tmp:
            model.save(tmp)
    probabilities, labels = evaluation.keras_predictions(model, evaluation_data)
    metrics = evaluation.scores(probabilities, labels, data.class_names)
    metrics.update(
        train_images_per_sec=(throughput.images_per_second
                              or previous.get("train_images_per_sec")), replicas=strategy.num_replicas_in_sync,
        global_batch_size=batch, epochs=config.train.epochs, steps=total,
        train_seconds=round(train_seconds, 1), train_images=len(data.train),
        eval_images=len(data.eval))
    files.write_json(workdir / "metrics.json", metrics)
    evaluation.plot_history(workdir / "history.csv", workdir / "training_curve.png")
    log.info("top-1 %.4f, top-5 %.4f on %d images", metrics["top1"], metrics["top5"],
             len(data.eval))
    if config.export.modes:
        export.run(model, config, data, workdir, reference=(probabilities, labels),
                   modes=["qat_int8"] if config.qat.enabled else config.export.modes)
    return metrics


def compile_model(model, optimizer, config):
    """Compiles with the loss and metrics of every run (tf_keras ones for a QAT model)."""
    k = keras if isinstance(model, keras.Model) else tf_keras
    model.compile(
        optimizer=optimizer,
        loss=k.losses.CategoricalCrossentropy(label_smoothing=config.train.label_smoothing),
        metrics=[k.metrics.CategoricalAccuracy(name="accuracy"),
                 k.metrics.TopKCategoricalAccuracy(5, name="top5")],
        jit_compile=config.runtime.jit_compile)


def quantization_aware(model, config, data):
    """The QAT twin of `model`; when it starts from `model.init_from`, its activation ranges
    are calibrated like an int8 export's."""
    from mobilenets import export

    quantized = qat.quantize(model)
    if not config.model.init_from:  # an untrained model's ranges say nothing: tfmot's [-6, 6]
        return quantized
    calibration = export.representative(data.train, config.data, tuple(model.input_shape[1:]),
                                        config.export.calibration_samples)
    count = qat.init_ranges(quantized, model, calibration())
    log.info("QAT: %d activation ranges calibrated on %d images", count,
             config.export.calibration_samples)
    return quantized


def read_json(path):
    """The JSON object at `path`, or {} if there is none (or it is damaged)."""
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return {}


def forget_epochs_after(history_csv, epochs):
    """Drops the CSV log rows of epochs >= `epochs`, which a resumed run trains again."""
    path = pathlib.Path(history_csv)
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:]
                        if line.strip() and int(line.split(",", 1)[0]) < epochs]
    if len(kept) < len(lines):
        files.write_text(path, "".join(kept))


def prepare_workdir(workdir):
    path = pathlib.Path(workdir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
        for stale in path.rglob(".tmp-*"):  # half-written files of a killed run
            stale.unlink()
    except OSError as error:
        raise UserError(f"workdir {path} cannot be created or written ({error.strerror})") from None
    return path


def check_classes(model_config, class_names):
    """The number of classes: the data's, which `model.num_classes` must agree with if set."""
    if model_config.num_classes is not None and model_config.num_classes != len(class_names):
        raise UserError(f"model.num_classes is {model_config.num_classes} but the data has "
                        f"{len(class_names)} classes ({', '.join(class_names[:5])}, ...)")
    return len(class_names)
