"""The training stage: optimizer and schedule from the config, Keras `fit`, checkpoints, resume.

`train(...)` trains a built model on the data's training split, validating on the evaluation
split, and returns the final model. Run it again on the same workdir and it resumes from the
last good checkpoint (see `Checkpointer`). It neither evaluates nor exports: `experiment` runs
the stages.
"""

import contextlib
import dataclasses
import logging
import pathlib
import sys
import tempfile
import warnings

import keras
import tensorflow as tf

from mobilenets import artifacts, files, interrupts, keras2, runtime
from mobilenets.data import augment, pipeline
from mobilenets.errors import TrainingDiverged, UserError
from mobilenets.training import distillation, phases
from mobilenets.training.callbacks import (
    Checkpointer,
    Guard,
    KeepLiveWeights,
    SkippedImages,
    StepSeeds,
    StopOnSignal,
    Throughput,
)
from mobilenets.training.history import forget_epochs_after
from mobilenets.training.optimizer import make_optimizer

log = logging.getLogger("mobilenets")


@dataclasses.dataclass
class Trained:
    """What training hands on: the final model (an `artifacts.Artifact`: float32 Keras 3 with
    EMA weights, or a QAT run's tf_keras model) and how the run went."""

    artifact: artifacts.Artifact
    batch: int  # global batch size
    replicas: int
    steps: int  # total steps of the run
    seconds: float  # training time of every session of the run, each to its last checkpoint
    images_per_second: float | None  # this session's, None if it trained no full epoch
    cpu_ms_per_image: float | None  # this session's CPU time (all threads) per image
    selected: dict  # which model `model` is: {"model": "last" or "best", "epoch": N, ...}
    skipped_images: int | None  # this session's images that failed to decode (None: not counted)


def global_batch_size(train_config, replicas):
    """The batch of one step across all replicas: `train.batch_size`, or
    `train.per_replica_batch_size` times the replicas when that is set."""
    if train_config.per_replica_batch_size:
        return train_config.per_replica_batch_size * replicas
    if train_config.batch_size % replicas:
        raise UserError(f"train.batch_size {train_config.batch_size} must be a multiple of the "
                        f"{replicas} replicas (or set train.per_replica_batch_size)")
    return train_config.batch_size


def train(config, task, data, model, workdir, strategy, *, scratch=None, chief=True,
          workers=1):
    """Trains `model` (built in `strategy`'s scope) for the experiment `config`; returns
    `Trained`.

    Checkpoints go to `workdir/checkpoints`, or to `scratch/checkpoints` for a multi-worker
    run's workers other than the chief (which restore from the chief's); the chief also
    writes `history.csv` and TensorBoard `logs/` into `workdir`.
    """
    workdir = pathlib.Path(workdir)
    num_classes = len(data.class_names)
    shape = tuple(config.model.input_shape)
    replicas = strategy.num_replicas_in_sync
    batch = global_batch_size(config.train, replicas)
    steps_per_epoch = len(data.train) // batch
    if steps_per_epoch == 0:
        raise UserError(f"train.batch_size {batch} is larger than the training set "
                        f"({len(data.train)} images)")
    if replicas > 1 or workers > 1:
        log.info("%d replicas in sync (%d worker(s)), global batch %d, %d per replica",
                 replicas, workers, batch, batch // replicas)

    recipe = augment.describe(config.data)
    if recipe:
        log.info("augmentation: %s", recipe)
    freeze = config.train.freeze_backbone_epochs
    fine_tuning = freeze or config.train.backbone_lr_multiplier != 1.0
    backbone = task.backbone_layers(config.model) if fine_tuning else set()
    with strategy.scope():
        teacher = distillation.load_teacher(config.train.teacher, num_classes) \
            if config.train.teacher else None
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.train.bn_momentum
                layer.synchronized = config.runtime.sync_batch_norm
        if config.qat.enabled:
            trained = quantization_aware(model, config, data)
        else:
            trained = keras2.for_strategy(model, config.runtime.strategy)
        compile_model(trained, make_optimizer(config.train, steps_per_epoch, trained, backbone),
                      task, config, teacher)
        if trained is not model or freeze:  # slots for every variable, whatever is frozen when
            trained.optimizer.build(trained.trainable_variables)
    if config.runtime.mixed_precision != "float32":
        scaled = isinstance(trained.optimizer, keras.optimizers.LossScaleOptimizer)
        log.info("%s: compute in %s, float32 variables and softmax%s",
                 config.runtime.mixed_precision, config.runtime.mixed_precision.split("_")[1],
                 ", dynamic loss scaling" if scaled else "")
    checkpointer = Checkpointer(
        workdir / "checkpoints", config.train.checkpoint_steps, config.train.keep_checkpoints,
        target=trained, save_directory=scratch and pathlib.Path(scratch) / "checkpoints",
        monitor=task.monitor, mode=task.monitor_mode)
    start = checkpointer.restore(trained)
    total = steps_per_epoch * config.train.epochs
    if start:
        log.info("resumed from epoch %d, step %d (global step %d of %d)",
                 start // steps_per_epoch + 1, start % steps_per_epoch, start, total)
    if chief:
        forget_epochs_after(workdir / "history.csv", start // steps_per_epoch)
    guard, throughput = Guard(checkpointer), Throughput(batch)
    skipped = pipeline.Skipped()
    k = keras2.api(trained)
    callbacks = [StepSeeds(config.train.seed), guard, throughput, SkippedImages(skipped)]
    if chief:  # the history row before the checkpoint that commits an epoch's end
        callbacks += [k.callbacks.CSVLogger(str(workdir / "history.csv"), append=True),
                      k.callbacks.TensorBoard(str(workdir / "logs"))]
    callbacks.append(checkpointer)
    callbacks.append(StopOnSignal(checkpointer))  # last: an epoch's end is written first
    if config.train.ema_decay:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    examples = task.examples(model, num_classes)
    if config.data.corrupt_images == "skip":  # a stream of failures would be skipped forever
        pipeline.check_training_examples(data.train, config.data, shape, examples,
                                         config.train.seed)
    validation = pipeline.eval_dataset(data.validating, config.data, shape, examples, batch)

    def fit_phase(phase, first_step, epoch, epochs, steps, extra=()):
        """Fits epochs [epoch, epochs) of `phase` (`steps` a first, partial epoch's steps),
        from global step `first_step`: its model (QAT: with BatchNorm or ranges frozen) with
        its layers trained (fine-tuning: the backbone frozen or not)."""
        stream = training_stream(strategy, data, config, examples, batch, first_step,
                                 skipped if replicas == 1 else None)
        fitted = trained
        if config.qat.enabled:
            from mobilenets.quantization import qat

            with strategy.scope():
                fitted = qat.fitted(trained, phase.batch_norm_frozen, phase.ranges_frozen)
                compile_model(fitted, trained.optimizer, task, config, teacher)
        if freeze:  # BatchNorm of a frozen backbone runs in inference mode
            for layer in fitted.layers:
                if layer.name.removeprefix("quant_") in backbone:
                    layer.trainable = not phase.backbone_frozen
            with strategy.scope():
                compile_model(fitted, trained.optimizer, task, config, teacher)
        with warnings.catch_warnings():
            # The training stream is endless, so "Your input ran out of data" can only come
            # from the first pass over the validation set, whose length Keras learns then
            # (fixed upstream by keras#23360).
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            with interrupts.training(), writes_reported(workdir):
                fitted.fit(stream, initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps,
                           shuffle=False, validation_data=validation,
                           callbacks=keras2.callbacks(trained, callbacks + list(extra)),
                           verbose=1 if sys.stdout.isatty() else 2)  # a bar in a terminal

    epoch, step_in_epoch = divmod(start, steps_per_epoch)
    for phase in phases.plan(config.train, config.qat):
        if phase.end <= epoch or guard.bad_step is not None:
            continue
        if step_in_epoch:  # finish the interrupted epoch first
            keep = KeepLiveWeights()
            fit_phase(phase, start, epoch, epoch + 1, steps_per_epoch - step_in_epoch, [keep])
            if epoch + 1 < config.train.epochs and guard.bad_step is None:
                keep.restore()
            epoch, step_in_epoch = epoch + 1, 0
        if epoch < phase.end and guard.bad_step is None:
            fit_phase(phase, epoch * steps_per_epoch, epoch, phase.end, steps_per_epoch)
            epoch = phase.end
    if start >= total and config.train.ema_decay:
        model.optimizer.finalize_variable_values(model.trainable_variables)

    if guard.bad_step is not None:
        last = checkpointer.checkpoints()
        raise TrainingDiverged(
            f"the loss became NaN or infinite at step {guard.bad_step}; the last good "
            f"checkpoint is {last[-1] if last else 'none'}. Try a lower train.learning_rate, "
            "train.warmup_epochs, or train.clip_norm (e.g. 1.0), then run the same command.")
    selected = {"model": "last", "epoch": config.train.epochs}
    if config.train.select == "best":
        selected = select_best(checkpointer, trained) or selected
    if config.qat.enabled:
        final = trained
    else:
        if trained is not model:
            keras2.copy_weights(trained, model)
        final = float32_copy(model) if config.runtime.mixed_precision != "float32" else model
    kind = artifacts.QAT if config.qat.enabled else artifacts.FLOAT
    return Trained(artifacts.Artifact(final, kind), batch, replicas, total,
                   round(checkpointer.seconds, 1), throughput.images_per_second,
                   throughput.cpu_ms_per_image, selected,
                   skipped.count() if replicas == 1 else None)


def select_best(checkpointer, trained):
    """Puts the weights of the best validated epoch (the `Checkpointer`'s best model, EMA
    weights if any) into `trained`, the model that was fitted (Keras 3, or a tf_keras QAT
    model or twin). Returns {"model": "best", "epoch", <monitored entry>: its value}, or None
    when no epoch was validated (a run of 0 epochs keeps its model)."""
    path = checkpointer.best_path(trained)
    if checkpointer.best is None or not path.is_file():
        log.warning("train.select: best: no epoch was validated; the model is the last one")
        return None
    trained.set_weights(artifacts.load_model(path, option="train.select: best:").get_weights())
    log.info("train.select: best: the model of epoch %s (%s %.4f on the held-out images)",
             checkpointer.best_epoch, checkpointer.monitor, checkpointer.best)
    return {"model": "best", "epoch": checkpointer.best_epoch,
            checkpointer.monitor: checkpointer.best}


@contextlib.contextmanager
def writes_reported(workdir):
    """Failed writes of Keras' own callbacks (history.csv, TensorBoard's logs/) as the
    `WriteError` of the file they name: a full disk is a message, not a traceback."""
    try:
        yield
    except (OSError, tf.errors.OpError) as error:
        reported = files.write_error(error, workdir)
        if reported is None:
            raise
        raise reported from error


def training_stream(strategy, data, config, examples, batch, first_step, skipped=None):
    """The training stream from global step `first_step`, its skipped images counted by
    `skipped` (one replica only). With several replicas, each input pipeline (one per worker)
    keeps its share of the one seeded stream and batches it per replica, so every global step
    trains on the images a single replica would."""
    def stream(shard=(1, 0), replica_batch=None):
        return pipeline.train_dataset(
            data.train, config.data, tuple(config.model.input_shape), examples, batch,
            config.train.seed, start_step=first_step, shard=shard, replica_batch=replica_batch,
            skipped=skipped)

    if strategy.num_replicas_in_sync == 1:
        return stream()
    return strategy.distribute_datasets_from_function(lambda context: stream(
        (context.num_input_pipelines, context.input_pipeline_id),
        context.get_per_replica_batch_size(batch)))


def float32_copy(model):
    """`model` rebuilt with float32 layers and the same weights: mixed-precision training keeps
    float32 variables, and the saved model and the exports compute in float32."""
    with runtime.precision("float32"):
        copy = keras.models.clone_model(model, clone_function=lambda layer: type(layer).from_config(
            {**layer.get_config(), "dtype": "float32"}))
    copy.set_weights(model.get_weights())
    return copy


def worker_scratch(workdir, index):
    """Where a worker other than the chief writes: a folder of the system's temporary
    directory, named after the run directory and the worker."""
    name = f"mobilenets-{pathlib.Path(workdir).name}-worker-{index}"
    path = pathlib.Path(tempfile.gettempdir()) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def compile_model(model, optimizer, task, config, teacher=None):
    """Compiles with the task's loss and metrics, in the model's library (`keras2.api`); with
    a `teacher`, its term is added to the loss (`distillation.attach`)."""
    k = keras2.api(model)
    model.compile(optimizer=optimizer, loss=task.loss(k, config.train), metrics=task.metrics(k),
                  jit_compile=config.runtime.jit_compile)
    if teacher is not None:
        distillation.attach(model, teacher, config.train)


def quantization_aware(model, config, data):
    """The QAT twin of `model`; when it starts from `model.init_from`, its activation ranges
    are calibrated like an int8 export's."""
    from mobilenets.quantization import qat

    quantized = qat.quantize(model)
    if not config.model.init_from:  # an untrained model's ranges say nothing: tfmot's [-6, 6]
        return quantized
    calibration = pipeline.representative(data.train, tuple(model.input_shape[1:]),
                                          config.export.calibration_samples)
    count = qat.init_ranges(quantized, model, calibration())
    log.info("QAT: %d activation ranges calibrated on %d images", count,
             config.export.calibration_samples)
    return quantized
