"""The rules between sections: what one section's value requires of another's. Each key's own
type and range are the schema's (`schema.py`); a model's name and options are the model
registry's; a task's needs are the task's (`Task.check_config`)."""

import difflib
import pathlib

from mobilenets.errors import UserError


def check(config):
    """Raises `UserError` naming the keys of the first rule `config` breaks."""
    _check_model(config.model)
    train, qat, runtime = config.train, config.qat, config.runtime
    if qat.enabled and train.ema_decay:
        raise UserError("train.ema_decay must be 0 with qat.enabled (QAT keeps no averages)")
    if runtime.strategy == "multi_worker" and train.ema_decay:
        raise UserError("train.ema_decay must be 0 with runtime.strategy multi_worker (it trains "
                        "the tf_keras twin of the model, whose averages are not carried over)")
    if qat.enabled and config.export.int8_output != "float32":
        raise UserError("export.int8_output must be float32 with qat.enabled (a QAT file's "
                        "classifier and softmax run in float)")
    if qat.enabled and config.export.quantizer == "litert":
        raise UserError("export.quantizer: litert quantizes a float model; with qat.enabled the "
                        "int8 file takes its ranges from training and the converter writes it")
    if qat.enabled and runtime.mixed_precision != "float32":
        raise UserError("runtime.mixed_precision must be float32 with qat.enabled (tfmot's "
                        "fake quantization runs in float32)")
    if config.data.eval_labels and config.data.source != "folder":
        raise UserError("data.eval_labels is read by data.source folder (a flat evaluation "
                        f"folder's classes), not by {config.data.source}")
    _check_fine_tuning(config)
    _check_task(config)
    _check_npu(config)
    if train.select == "best" and not config.data.holdout:
        raise UserError("train.select: best picks the model by its validation score, which "
                        "needs images held out of training: set data.holdout (e.g. 0.1); "
                        "without it training validates on the evaluation split, and the "
                        "model reported must not be chosen on the images it is scored on")


def _check_task(config):
    """A registered task, and what it needs of the other sections (`Task.check_config`)."""
    from mobilenets import tasks

    if config.task.name not in tasks.TASKS:
        close = difflib.get_close_matches(config.task.name, list(tasks.TASKS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"task.name: unknown task {clip(repr(config.task.name))}{hint}; "
                        f"valid: {', '.join(tasks.TASKS)}")
    problem = tasks.get(config.task).check_config(config)
    if problem:
        raise UserError(problem)


def _check_npu(config):
    """Known NPU targets, and an int8 file for them to compile."""
    from mobilenets.tflite import npu

    for target in config.export.npu:
        npu.parse(target)
    if config.export.npu and "int8" not in config.export.modes and not config.qat.enabled:
        raise UserError("export.npu compiles int8 files: add int8 to export.modes")


def _check_fine_tuning(config):
    train = config.train
    if train.freeze_backbone_epochs and train.freeze_backbone_epochs >= train.epochs:
        raise UserError(f"train.freeze_backbone_epochs ({train.freeze_backbone_epochs}) must be "
                        f"below train.epochs ({train.epochs}): the backbone would never train")
    if train.restart_schedule and not train.freeze_backbone_epochs:
        raise UserError("train.restart_schedule restarts when the backbone unfreezes: set "
                        "train.freeze_backbone_epochs")
    if train.backbone_lr_multiplier != 1.0 and (
            config.qat.enabled or config.runtime.strategy == "multi_worker"):
        raise UserError("train.backbone_lr_multiplier works in Keras 3 training, not with "
                        "qat.enabled or runtime.strategy multi_worker (tf_keras)")


def _check_model(model):
    from mobilenets.models import registry

    try:
        registry.check(model.name)
    except ValueError as error:
        raise UserError(f"model.name: {clip(error, 300)}") from None
    shape = model.input_shape
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) <= 0:
        raise UserError(f"model.input_shape must be [height, width, 1 or 3], got {shape}")
    _check_weights(model)
    # model.options holds the family's own options; alpha and the common ones are model keys.
    own = [key for key in registry.family_options(model.name) if key != "alpha"]
    try:
        registry.check(model.name, model.options, own)
    except ValueError as error:
        raise UserError(f"model.options: {clip(error, 400)}") from None


def _check_weights(model):
    from mobilenets.models.pretrained import KERAS_APPLICATIONS
    from mobilenets.models.torch_weights import SUFFIXES

    if not model.weights:
        return
    if model.init_from:
        raise UserError("model.weights and model.init_from both set: start from one of them")
    if model.weights == "imagenet":
        if model.name not in KERAS_APPLICATIONS:
            raise UserError(f"model.weights: imagenet: keras.applications has no ImageNet "
                            f"weights for {model.name}; it has them for "
                            f"{', '.join(KERAS_APPLICATIONS)} (PyTorch checkpoints of the "
                            "others load from a file)")
        torch = False
    else:
        path = pathlib.Path(model.weights)
        if path.suffix not in (".h5", *SUFFIXES):
            raise UserError(f"model.weights: {clip(model.weights)} is neither imagenet, a "
                            "keras.applications .h5 file nor a PyTorch checkpoint "
                            f"({', '.join(SUFFIXES)})")
        if not path.is_file():
            raise UserError(f"model.weights: no file {clip(model.weights)}")
        torch = path.suffix in SUFFIXES
    wanted = "symmetric" if torch else "same"
    if model.padding != wanted:
        source = "PyTorch checkpoints were" if torch else "keras.applications' weights were"
        raise UserError(f"model.weights: {source} trained with padding: {wanted}, set "
                        f"model.padding: {wanted}")


def clip(text, limit=80):
    """`text` cut to `limit` characters: error messages never echo a huge value."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."
