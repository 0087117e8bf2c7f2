"""The training loop: model, optimizer and schedule from the config, Keras `fit`, resume.

`train(config, workdir)` runs train -> evaluate -> export and returns the final metrics. Run it
again on the same workdir and it resumes from the last good checkpoint (see `Checkpointer`).
"""

import json
import logging
import pathlib
import sys
import warnings

import keras
import tf_keras

from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets import files, qat, runtime
from mobilenets.callbacks import Checkpointer, Guard, KeepLiveWeights, Throughput
from mobilenets.optimization import make_optimizer
from mobilenets.errors import UserError
from mobilenets.models.registry import build_model

log = logging.getLogger("mobilenets")


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the message says at which step and what to try."""


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


def train(config, workdir):
    """Trains, evaluates and exports the experiment `config` in `workdir`; returns metrics.

    Under `runtime.strategy: multi_worker` every worker runs this with the same arguments:
    all of them resume from the checkpoints in `workdir` (a folder they all can read), only
    the chief writes there, and the others keep their final model in a scratch folder.
    """
    from mobilenets import evaluation, export

    runtime.setup(config.runtime, config.train)
    strategy = runtime.strategy(config.runtime)
    workers, worker_index, chief = runtime.worker(strategy)
    workdir = prepare_workdir(workdir) if chief else pathlib.Path(workdir)
    scratch = None if chief else worker_scratch(workdir, worker_index)  # a worker's own folder
    data = data_lib.load(config.data, seed=config.train.seed)
    num_classes = check_classes(config.model, data.class_names)
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
    if chief:
        files.write_text(workdir / "config.yaml", config_lib.dump(config))
        files.write_text(workdir / "labels.txt", "\n".join(data.class_names) + "\n")

    with strategy.scope():
        model = build(config.model, num_classes)
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = config.train.bn_momentum
                layer.synchronized = config.runtime.sync_batch_norm
        # What `fit` trains: the Keras 3 model; for QAT its fake-quantized tf_keras twin; under
        # multi_worker its plain tf_keras twin, because Keras 3's fit fails under
        # MultiWorkerMirroredStrategy (keras-team/keras#20585) while tf_keras' works.
        if config.qat.enabled:
            trained = quantization_aware(model, config, data)
        elif config.runtime.strategy == "multi_worker":
            trained = qat.twin(model)
        else:
            trained = model
        compile_model(trained, make_optimizer(config.train, steps_per_epoch, trained), config)
        if trained is not model:  # slots for every variable, whatever is frozen when (resume)
            trained.optimizer.build(trained.trainable_variables)
    if config.runtime.mixed_precision != "float32":
        scaled = isinstance(trained.optimizer, keras.optimizers.LossScaleOptimizer)
        log.info("%s: compute in %s, float32 variables and softmax%s",
                 config.runtime.mixed_precision, config.runtime.mixed_precision.split("_")[1],
                 ", dynamic loss scaling" if scaled else "")
    checkpointer = Checkpointer(
        workdir / "checkpoints", config.train.checkpoint_steps, config.train.keep_checkpoints,
        target=trained, save_directory=scratch and scratch / "checkpoints")
    start = checkpointer.restore(trained)
    total = steps_per_epoch * config.train.epochs
    if start:
        log.info("resumed from epoch %d, step %d (global step %d of %d)",
                 start // steps_per_epoch + 1, start % steps_per_epoch, start, total)
    previous = read_json(workdir / "metrics.json")
    if chief:
        forget_epochs_after(workdir / "history.csv", start // steps_per_epoch)
    guard, throughput = Guard(checkpointer), Throughput(batch)
    k = keras if trained is model else tf_keras
    callbacks = [guard, throughput, checkpointer]
    if chief:
        callbacks += [k.callbacks.CSVLogger(str(workdir / "history.csv"), append=True),
                      k.callbacks.TensorBoard(str(workdir / "logs"))]
    if config.train.ema_decay:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights())
    evaluation_data = data_lib.eval_dataset(data.eval, config.data, shape, num_classes, batch)

    def fit(first_step, epoch, epochs, steps, extra=()):
        stream = training_stream(strategy, data, config, num_classes, batch, first_step)
        fitted, hooks = trained, callbacks + list(extra)
        if config.qat.enabled:  # freezing (BatchNorm, ranges) as of this epoch
            with strategy.scope():
                fitted = qat.for_epoch(trained, epoch, config.qat)
                compile_model(fitted, trained.optimizer, config)
        if trained is not model:
            hooks = [qat.KerasCallback(h) if isinstance(h, keras.callbacks.Callback) else h
                     for h in hooks]
        with warnings.catch_warnings():
            # The training stream is endless, so "Your input ran out of data" can only come
            # from the first pass over the validation set, whose length Keras learns then
            # (fixed upstream by keras#23360).
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            fitted.fit(stream, initial_epoch=epoch, epochs=epochs, steps_per_epoch=steps,
                       shuffle=False, validation_data=evaluation_data, callbacks=hooks,
                       verbose=1 if sys.stdout.isatty() else 2)  # a bar in a terminal, else lines

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
    if config.qat.enabled:
        model = trained
    elif trained is not model:  # the trained twin's weights back into the Keras 3 model
        for layer in model.layers:
            layer.set_weights(trained.get_layer(layer.name).get_weights())
    if config.runtime.mixed_precision != "float32":
        model = float32_copy(model)
    save_model(model, scratch or workdir, config.qat.enabled)
    if not chief:
        log.info("worker %d done; its final model is in %s (the chief writes %s)",
                 worker_index, scratch, workdir)
        return {"top1": None, "top5": None, "train_images_per_sec": throughput.images_per_second}

    probabilities, labels = evaluation.keras_predictions(model, evaluation_data)
    metrics = evaluation.scores(probabilities, labels, data.class_names)
    metrics.update(
        train_images_per_sec=(throughput.images_per_second
                              or previous.get("train_images_per_sec")),
        replicas=replicas, workers=workers, global_batch_size=batch,
        per_replica_batch_size=batch // replicas, epochs=config.train.epochs, steps=total,
        train_seconds=round(checkpointer.seconds, 1), train_images=len(data.train),
        eval_images=len(data.eval))
    files.write_json(workdir / "metrics.json", metrics)
    evaluation.plot_history(workdir / "history.csv", workdir / "training_curve.png")
    log.info("top-1 %.4f, top-5 %.4f on %d images", metrics["top1"], metrics["top5"],
             len(data.eval))
    if config.export.modes:
        export.run(model, config, data, workdir, reference=(probabilities, labels),
                   modes=["qat_int8"] if config.qat.enabled else config.export.modes)
    return metrics


def save_model(model, folder, quantized):
    """Writes the final model: `model.keras`, or a QAT run's tf_keras `model_qat.h5`."""
    if quantized:
        with files.atomic_path(folder / "model_qat.h5") as tmp:
            qat.save(model, tmp)
    else:
        with files.atomic_path(folder / "model.keras") as tmp:
            model.save(tmp)


def global_batch_size(train_config, replicas):
    """The batch of one step across all replicas: `train.batch_size`, or
    `train.per_replica_batch_size` times the replicas when that is set."""
    if train_config.per_replica_batch_size:
        return train_config.per_replica_batch_size * replicas
    if train_config.batch_size % replicas:
        raise UserError(f"train.batch_size {train_config.batch_size} must be a multiple of the "
                        f"{replicas} replicas (or set train.per_replica_batch_size)")
    return train_config.batch_size


def training_stream(strategy, data, config, num_classes, batch, first_step):
    """The training stream from global step `first_step`. With several replicas, each input
    pipeline (one per worker) keeps its share of the one seeded stream and batches it per
    replica, so every global step trains on the images a single replica would."""
    def stream(shard=(1, 0), replica_batch=None):
        return data_lib.train_dataset(
            data.train, config.data, tuple(config.model.input_shape), num_classes, batch,
            config.train.seed, start_step=first_step, shard=shard, replica_batch=replica_batch)

    if strategy.num_replicas_in_sync == 1:
        return stream()
    return strategy.distribute_datasets_from_function(lambda context: stream(
        (context.num_input_pipelines, context.input_pipeline_id),
        context.get_per_replica_batch_size(batch)))


def float32_copy(model):
    """`model` rebuilt with float32 layers and the same weights: mixed-precision training keeps
    float32 variables, and the saved model and the exports compute in float32."""
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = keras.models.clone_model(model, clone_function=lambda layer: type(layer).from_config(
            {**layer.get_config(), "dtype": "float32"}))
    finally:
        keras.mixed_precision.set_global_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


def worker_scratch(workdir, index):
    """Where a worker other than the chief writes: a folder of the system's temporary
    directory, named after the run directory and the worker."""
    import tempfile

    path = pathlib.Path(tempfile.gettempdir()) / f"mobilenets-{workdir.name}-worker-{index}"
    path.mkdir(parents=True, exist_ok=True)
    return path


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
