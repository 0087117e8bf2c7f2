"""Runs an experiment: data -> model -> train -> evaluate -> export, in a run directory it owns.

`train(config, workdir)` is what `mobilenets train` (and train.py) calls. It is also the stage
boundary: errors the stages raise for something a user can fix become `UserError`s here.
"""

import datetime
import logging
import pathlib
import shlex
import sys

from mobilenets import artifacts, files, runtime, tasks, version
from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets.errors import CheckpointMismatch, UserError
from mobilenets.evaluation import score_model
from mobilenets.export import stage as export_stage
from mobilenets.training import train as train_model
from mobilenets.training.history import plot_history
from mobilenets.training.loop import worker_scratch

log = logging.getLogger("mobilenets")


def train(config, workdir):
    """Trains, evaluates and exports the experiment `config` in `workdir`; returns metrics.

    Run it again on the same workdir and it resumes (or, for a finished run, re-evaluates and
    re-exports). Under `runtime.strategy: multi_worker` every worker runs this with the same
    arguments: all of them resume from the checkpoints in `workdir` (a folder they all can
    read), only the chief writes there, and the others keep their final model in a scratch
    folder.
    """
    runtime.setup(config.runtime, config.train)
    strategy = runtime.strategy(config.runtime)
    workers, worker_index, chief = runtime.worker(strategy)
    with runtime.precision(config.runtime.mixed_precision):
        if not chief:
            return _train(config, pathlib.Path(workdir), strategy, workers, worker_index, chief)
        workdir = prepare_workdir(workdir)
        with files.run_lock(workdir):  # one command per run directory
            remove_half_written(workdir)
            return _train(config, workdir, strategy, workers, worker_index, chief)


def _train(config, workdir, strategy, workers, worker_index, chief):
    scratch = None if chief else worker_scratch(workdir, worker_index)
    task = tasks.get(config.task)
    if not task.evaluates_as_clients:
        warn_about_deployment(config.data)
    data = data_lib.load(config.data, seed=config.train.seed,
                         channels=config.model.input_shape[2], labels=task.labels)
    num_classes = check_classes(config.model, data.class_names)
    previous = files.read_json(workdir / "metrics.json")
    if chief:
        files.write_text(workdir / "config.yaml", config_lib.dump(config))
        files.write_text(workdir / "labels.txt", "\n".join(data.class_names) + "\n")
        record_session(workdir)

    with strategy.scope():
        model = build(task, config.model, num_classes)
    try:
        trained = train_model(config, task, data, model, workdir, strategy, scratch=scratch,
                              chief=chief, workers=workers)
    except CheckpointMismatch as error:
        raise UserError(str(error)) from None
    artifacts.save_final(trained.artifact, scratch or workdir)
    if not chief:
        log.info("worker %d done; its final model is in %s (the chief writes %s)",
                 worker_index, scratch, workdir)
        return {"top1": None, "top5": None, "train_images_per_sec": trained.images_per_second}

    metrics, examples = score_model(trained.artifact.model, task, data.eval, data.class_names,
                                    config.data, trained.batch)
    metrics.update(
        train_images_per_sec=(trained.images_per_second
                              or previous.get("train_images_per_sec")),
        train_cpu_ms_per_image=(trained.cpu_ms_per_image
                                or previous.get("train_cpu_ms_per_image")),
        replicas=trained.replicas, workers=workers, global_batch_size=trained.batch,
        per_replica_batch_size=trained.batch // trained.replicas, epochs=config.train.epochs,
        steps=trained.steps, train_seconds=trained.seconds, train_images=len(data.train),
        eval_images=len(data.eval), selected=trained.selected,
        skipped_images=trained.skipped_images,
        sessions=files.read_json(workdir / "sessions.json").get("sessions", []))
    if data.validation is not None:  # the held-out images, what the best model was picked by
        held, _ = score_model(trained.artifact.model, task, data.validation, data.class_names,
                              config.data, trained.batch)
        metrics["validation"] = {key: held[key] for key in (*task.report_keys, "loss", "images")
                                 if key in held}
        log.info("validation (held out of training): %s on %d images", task.summary(held),
                 len(data.validation))
    files.write_json(workdir / "metrics.json", metrics)
    plot_history(workdir / "history.csv", workdir / "training_curve.png")
    task.plot(metrics, data.class_names, workdir / "eval", examples)
    log.info("%s on %d images", task.summary(metrics), len(data.eval))
    if config.export.modes:
        export_stage.run(trained.artifact, config, task, data, workdir)
    return metrics


def record_session(workdir):
    """Adds this command to the run's `sessions.json`: when it started, from which checkpoint
    step, the command line, and the package version and commit it ran (a run resumed across
    sessions may span several)."""
    path = workdir / "sessions.json"
    sessions = files.read_json(path).get("sessions", [])
    step = files.read_json(workdir / "checkpoints" / "state.json").get("step") or 0
    sessions.append({"started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                     "from_step": step, "command": " ".join(map(shlex.quote, sys.argv)),
                     "version": version.__version__, "commit": version.commit()})
    files.write_json(path, {"sessions": sessions})


def warn_about_deployment(data_config):
    """Says when the evaluation preprocessing is not what Android's clients do (they resize the
    whole camera image to the input): the phone will then score what report.json gives, not
    metrics.json's top-1."""
    differences = []
    if data_config.small_images == "pad":
        differences.append("data.small_images: pad centres small images in the input; the "
                           "clients stretch them to it")
    if data_config.crop_fraction < 1.0:
        differences.append(f"data.crop_fraction {data_config.crop_fraction:g} crops the "
                           "centre; the clients keep the whole image")
    for difference in differences:
        log.warning("deployment: %s. The exported files are verified as the clients feed "
                    "them: export/report.json's top-1 is what a phone scores, metrics.json's "
                    "is this evaluation's.", difference)


def build(task, model_config, num_classes):
    """The task's model for `model_config`, started from `model.weights` or `model.init_from`
    if set."""
    try:
        model = task.build_model(model_config, num_classes)
    except ValueError as error:
        raise UserError(f"model: {error}") from None
    if model_config.weights:
        load_pretrained(task.pretrained_part(model), model_config)
    if model_config.init_from:
        artifacts.load_weights_from(model, model_config.init_from)
    return model


def load_pretrained(model, model_config):
    """Loads `model.weights` into `model` (the part of the task's model they are for: a
    classifier, or a detector's backbone): keras.applications' ImageNet weights (or one of its
    .h5 files), or a PyTorch checkpoint."""
    from mobilenets.models import pretrained, torch_weights
    from mobilenets.models.registry import family_options

    weights = model_config.weights
    try:
        if pathlib.Path(weights).suffix in torch_weights.SUFFIXES:
            epsilon = torch_weights.TORCH_EPSILON.get(model_config.name,
                                                      torch_weights.DEFAULT_TORCH_EPSILON)
            kept = torch_weights.load_torch(model, torch_weights.read_state_dict(weights),
                                            bn_epsilon=epsilon, origin=weights)
        else:
            defaults = family_options(model_config.name)
            chosen = {"alpha": model_config.alpha, **model_config.options}
            options = {k: v for k, v in chosen.items() if k in defaults and v != defaults[k]}
            kept = pretrained.load_keras_applications(model, model_config.name, options,
                                                      weights)
    except ValueError as error:  # mismatches, keras.applications' own checks (alpha, ...)
        raise UserError(f"model.weights: {error}") from None
    except OSError as error:  # the download
        raise UserError(f"model.weights: {weights}: {error}") from None
    except Exception as error:  # noqa: BLE001 - Keras' failed download is a bare Exception
        failed = pretrained.failed_download(error)
        if failed is None:
            raise
        url, reason = failed
        name = url.rsplit("/", 1)[-1]
        raise UserError(f"model.weights: {weights}: cannot download {url} ({reason}). Without "
                        f"internet, download {name} on another machine, copy it here and set "
                        f"model.weights: path/to/{name}") from None
    fresh = f"; {', '.join(kept)} starts fresh (another number of classes)" if kept else ""
    log.info("model.weights: %s loaded%s", weights, fresh)


def prepare_workdir(workdir):
    """Creates the run directory; UserError if it cannot be written."""
    return files.writable_folder(workdir, "workdir")


def remove_half_written(workdir):
    """Removes the half-written files a killed run left (under the run lock: a running
    command's are its own)."""
    try:
        for stale in pathlib.Path(workdir).rglob(".tmp-*"):
            stale.unlink()
    except OSError as error:
        raise UserError(f"workdir {workdir}: cannot remove a half-written file "
                        f"({error.strerror})") from None


def check_classes(model_config, class_names):
    """The number of classes: the data's, which `model.num_classes` must agree with if set."""
    if model_config.num_classes is not None and model_config.num_classes != len(class_names):
        raise UserError(f"model.num_classes is {model_config.num_classes} but the data has "
                        f"{len(class_names)} classes ({', '.join(class_names[:5])}, ...)")
    return len(class_names)
