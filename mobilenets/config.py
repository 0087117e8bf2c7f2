"""The experiment schema: typed sections with defaults, YAML loading with `base:` includes,
`--set` overrides, checks.

Every key is declared once, with its default, its meaning and its allowed range (`option`). A
YAML experiment overrides only what differs from the defaults, or from the file it names as
`base:` (a path relative to itself). Unknown keys, wrong types and out-of-range values raise
`UserError` naming the key path (`train.batch_size`), with a suggestion for near misses.
"""

import dataclasses
import difflib
import functools
import logging
import math
import pathlib
import types
import typing
from typing import Literal

import yaml

from mobilenets.errors import UserError
from mobilenets.schema import (  # noqa: F401 - part of this module's API
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    Range,
    option,
)

# Pillow refuses to open images above this many pixels (twice its MAX_IMAGE_PIXELS).
PILLOW_PIXEL_BOUND = 2 * 89_478_485
log = logging.getLogger("mobilenets")
MAX_FILE_BYTES = 1 << 20  # a config file is a few kB; this bounds what YAML is asked to parse


# Keys of the task section that moved into a task's own section: read there, with a warning.
MOVED_TASK_KEYS = {**{key: "detection" for key in ("match_threshold", "focal_loss",
                                                    "max_detections", "nms_iou_threshold")},
                   **{key: "segmentation" for key in ("head", "output_stride", "aspp")}}


@functools.cache
def _task_config_class(sections):
    fields = [("name", str, option(
        "classification", "what the model is trained to do: classification, detection "
        "(SSDLite on the model's backbone; data.source scenes, coco or tfds), segmentation "
        "(a DeepLabv3 or LR-ASPP head; data.source scenes, masks or tfds), or a task a "
        "program registered (tasks.register)"))]
    fields += [(name, section, dataclasses.field(default_factory=section))
               for name, section in sections]
    return dataclasses.make_dataclass("TaskConfig", fields)


def task_config_class():
    """The task section's schema: `name`, and the section of each registered task that has one
    (`Task.Config`: `task.detection.*`, `task.segmentation.*`)."""
    from mobilenets import tasks

    return _task_config_class(tuple((name, task.Config) for name, task in tasks.TASKS.items()
                                    if task.Config is not None))


TaskConfig = task_config_class()  # of the built-in tasks


@dataclasses.dataclass
class ModelConfig:
    name: str = option("mobilenet_v2", "the model family (`mobilenets models` lists them)")
    alpha: float = option(1.0, "width multiplier (ShuffleNet: its scale)", POSITIVE)
    input_shape: list[int] = option([224, 224, 3], "[height, width, channels (1 or 3)]")
    num_classes: int | None = option(
        None, "number of classes; empty for the data's (which it must match)", Range(1))
    dropout: float | None = option(None, "dropout before the classifier; empty for the "
                                   "family's reference value", Range(0, 1, high_open=True))
    drop_path: float = option(
        0.0, "stochastic depth: the largest rate at which a residual block is skipped in "
        "training, rising linearly from 0 at the first block (MobileNetV2, V3, V4, MobileNeXt, "
        "EfficientNet-Lite; off in inference, exported files and QAT)",
        Range(0, 1, high_open=True))
    options: dict = option({}, "family options, e.g. {minimalistic: true} for MobileNetV3")
    padding: Literal["same", "symmetric"] = option(
        "same", "how strided layers pad: same (TensorFlow's; keras.applications' weights) or "
        "symmetric (PyTorch's: torchvision, timm and the authors' weights; timm's tf_* "
        "models keep same)")
    weights: str = option(
        "", "pretrained weights to start from: imagenet (keras.applications', downloaded and "
        "cached by Keras: MobileNetV1, V2, V3 and Xception), the path of one of its .h5 files, "
        "or a PyTorch checkpoint (.safetensors, or .pth with torch installed) of torchvision, "
        "timm (MobileNetV3, MobileNetV4, tf_efficientnet_lite) or the MobileNeXt and "
        "ShuffleNet authors' code (with padding: symmetric, but same for timm's tf_* models); "
        "a classifier for another number of classes starts fresh")
    init_from: str = option("", "a float .keras file of the same architecture to start from")


@dataclasses.dataclass
class DataConfig:
    source: Literal["sample", "fashion_mnist", "folder", "tfds", "scenes", "coco",
                    "masks"] = option(
        "sample", "classification: sample (bundled Fashion-MNIST subset), fashion_mnist (IDX "
        "files), folder (one subfolder per class) or tfds; detection: scenes (Fashion-MNIST "
        "items placed on larger canvases, made here), coco (COCO-format JSON and images) or tfds "
        "(a dataset with objects: coco/2017, voc); segmentation: scenes (with their pixel "
        "masks), masks (<split>/images/ and <split>/masks/ PNGs with labels.txt, or PASCAL "
        "VOC's folders) or tfds (a dataset with a segmentation_mask or segmentation_label "
        "feature, and data.mask_classes)")
    dir: str = option("", "folder root, Fashion-MNIST IDX folder, the tfds data_dir, or the "
                      "COCO-format or mask folder")
    mask_classes: list[str] = option(
        [], "segmentation from tfds: the names of mask values 0, 1, ... (tfds masks carry "
        "none; oxford_iiit_pet: [none, pet, background, border])")
    scene_size: int = option(96, "scenes: the side of a scene, in pixels", Range(32, 1024))
    train_scenes: int = option(4000, "scenes: how many training scenes", POSITIVE)
    eval_scenes: int = option(500, "scenes: how many evaluation scenes", POSITIVE)
    full_test_set: bool = option(
        True, "sample: evaluate on the full Fashion-MNIST test set when it is installed "
        "(data.dir or the Debian package's folder), else on the bundled 2,000 test images")
    name: str = option("", "tfds dataset name, e.g. imagenet2012")
    manual_dir: str = option("", "tfds manual download folder (imagenet2012)")
    train_split: str = option("train", "tfds split, folder subfolder, coco: the JSON "
                              "file (or a folder holding one) under data.dir, masks: the "
                              "subfolder (VOC: the ImageSets/Segmentation list), for training")
    eval_split: str = option("test", "likewise for evaluation (folder: empty with "
                             "validation_fraction)")
    validation_fraction: float = option(
        0.0, "folder without split subfolders: fraction of each class held out for evaluation",
        FRACTION)
    holdout: float = option(
        0.0, "images held out of the training split to validate on and pick the best model "
        "by, a count (5000) or a fraction below 1 (0.1), the same share of each class (a "
        "streamed tfds split: whole record files holding at least that many); 0: validate "
        "on the evaluation split", NON_NEGATIVE)
    holdout_seed: int = option(0, "seed of the held-out images (fixed across runs, so that "
                               "their validation scores compare)", SEED)
    augment: Literal["inception", "flip_crop", "flip", "none"] = option(
        "inception", "training augmentation: inception (random resized crop and flip), "
        "flip_crop (pad, random crop, flip), flip or none; detection: inception and flip_crop "
        "are SSD's random crop (boxes kept), flip and a brightness / contrast jitter; "
        "segmentation: inception and flip_crop are DeepLab's random scale (0.5-2), crop and "
        "flip of image and mask together")
    min_crop_area: float = option(0.08, "inception crop: smallest fraction of the image kept",
                                  Range(0, 1, low_open=True))
    crop_padding: int = option(0, "flip_crop: zero pixels added on each side (0: 1/8 of the "
                               "height)", NON_NEGATIVE)
    erase_probability: float = option(
        0.0, "random erasing: the chance that an image gets a noise rectangle", FRACTION)
    randaugment_ops: int = option(
        0, "RandAugment (Cubuk et al., 2020): operations applied to each training image, each "
        "chosen at random from the paper's 14 (0: off; the paper and timm: 2)", Range(0, 10))
    randaugment_magnitude: float = option(
        9.0, "RandAugment: strength on timm's 0-10 scale (each operation's strength drawn up "
        "to it; 10: rotate 30 degrees, translate 45%; timm's MobileNetV3 recipe: 9)",
        Range(0, 10))
    mixup_alpha: float = option(
        0.0, "MixUp (Zhang et al., 2018): images and labels of a batch blended by "
        "Beta(alpha, alpha) weights (0: off; MobileNetV4's large recipes: 0.8)", NON_NEGATIVE)
    cutmix_alpha: float = option(
        0.0, "CutMix (Yun et al., 2019): a box of each image pasted from another, labels by "
        "the pixels pasted, box area from Beta(alpha, alpha) (0: off; usual: 1.0); with "
        "mixup_alpha too, each batch gets one of the two at even odds", NON_NEGATIVE)
    mix_probability: float = option(
        1.0, "MixUp / CutMix: the fraction of batches mixed (the others are left as they are)",
        FRACTION)
    crop_fraction: float = option(
        0.875, "evaluation: the central fraction of each side kept, then resized to the "
        "input (1.0: the whole image)",
        Range(0, 1, low_open=True))
    small_images: Literal["resize", "pad"] = option(
        "resize", "images smaller than the model input: resize, or pad (centred)")
    corrupt_images: Literal["skip", "error"] = option(
        "skip", "image files that do not decode, or exceed max_pixels: skip them (counted in "
        "the log) or stop")
    max_pixels: int = option(
        89_478_485, "the largest image file read, in pixels (width x height, from its header: "
        "larger ones are refused as corrupt_images says, before decoding)",
        Range(1, PILLOW_PIXEL_BOUND))
    cache: bool = option(True, "keep the encoded images in memory when they fit "
                         "(max_cache_mb)")
    max_cache_mb: int = option(4096, "the largest split held in memory, in MB", POSITIVE)
    train_limit: int = option(0, "use only the first N training images (0: all)",
                              NON_NEGATIVE)
    eval_limit: int = option(0, "use only the first N evaluation images (0: all)",
                             NON_NEGATIVE)


@dataclasses.dataclass
class TrainConfig:
    epochs: int = option(1, "training epochs", NON_NEGATIVE)
    batch_size: int = option(32, "global batch size, across replicas", POSITIVE)
    per_replica_batch_size: int = option(
        0, "if set, the global batch is this times the replicas", NON_NEGATIVE)
    optimizer: Literal["rmsprop", "sgd", "adam", "adamw"] = option("rmsprop", "the optimizer")
    learning_rate: float = option(0.045, "peak learning rate, for base_batch_size images per "
                                  "step", POSITIVE)
    base_batch_size: int = option(
        0, "scale the learning rate by batch_size / base_batch_size (0: off)", NON_NEGATIVE)
    momentum: float = option(0.9, "SGD and RMSProp momentum", FRACTION)
    nesterov: bool = option(False, "SGD: Nesterov momentum")
    rho: float = option(0.9, "RMSProp decay", FRACTION)
    epsilon: float | None = option(
        None, "RMSProp / Adam / AdamW epsilon; empty for the optimizer's default (RMSProp: "
        "1.0, TF-slim's value for MobileNets; Adam, AdamW: 1e-7)", POSITIVE)
    beta_1: float = option(0.9, "Adam / AdamW first-moment decay", Range(0, 1, high_open=True))
    beta_2: float = option(0.999, "Adam / AdamW second-moment decay",
                           Range(0, 1, high_open=True))
    schedule: Literal["exponential", "cosine", "linear", "poly", "step", "constant"] = option(
        "exponential", "learning-rate schedule after warmup (poly: DeepLab's, the rate times "
        "(1 - progress) ** poly_power)")
    poly_power: float = option(0.9, "poly: the power (DeepLab: 0.9)", POSITIVE)
    decay_rate: float = option(0.98, "exponential: factor per decay_epochs", POSITIVE)
    decay_epochs: float = option(1.0, "exponential: epochs per decay step", POSITIVE)
    step_epochs: list[float] = option([30.0, 60.0, 80.0], "step: epochs where the rate drops")
    step_factor: float = option(0.1, "step: factor at each of step_epochs", POSITIVE)
    min_learning_rate: float = option(0.0, "where cosine, linear and poly end", NON_NEGATIVE)
    warmup_epochs: float = option(0.0, "linear warmup from 0, in epochs", NON_NEGATIVE)
    freeze_backbone_epochs: int = option(
        0, "fine-tuning: train only the classifier for the first N epochs, the backbone "
        "frozen (its BatchNorm in inference mode)", NON_NEGATIVE)
    backbone_lr_multiplier: float = option(
        1.0, "fine-tuning: the backbone's learning rate is this times the classifier's "
        "(decoupled weight decay keeps the base rate)", POSITIVE)
    restart_schedule: bool = option(
        False, "fine-tuning: when the backbone unfreezes, start the schedule (warmup "
        "included) again over the remaining epochs")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy", FRACTION)
    teacher: str = option(
        "", "knowledge distillation: a trained classifier (.keras: any family, input size or "
        "channels; a checkpoint becomes one by a run of 0 epochs from model.weights) whose "
        "predictions the model also learns from; empty: off")
    distill_weight: float = option(
        0.5, "distillation: the weight of the teacher's term (the labels' is 1 - it)", FRACTION)
    distill_temperature: float = option(
        1.0, "distillation: the softmax temperature of both models' predictions in the "
        "teacher's term", POSITIVE)
    weight_decay: float = option(4e-5, "weight decay of conv and dense kernels",
                                 NON_NEGATIVE)
    weight_decay_mode: Literal["l2", "decoupled"] = option(
        "l2", "l2 (the papers' L2 loss term) or decoupled (AdamW-style)")
    bn_momentum: float = option(0.99, "BatchNorm moving-statistics momentum", FRACTION)
    ema_decay: float = option(0.0, "moving average of the weights (0: off; e.g. 0.9999 for "
                              "ImageNet)", Range(0, 1, high_open=True))
    clip_norm: float = option(0.0, "global gradient-norm clipping (0: off)", NON_NEGATIVE)
    checkpoint_steps: int = option(
        0, "also checkpoint every N steps (0: at epoch ends only)", NON_NEGATIVE)
    keep_checkpoints: int = option(3, "checkpoints kept", POSITIVE)
    select: Literal["last", "best"] = option(
        "last", "the model the run evaluates, exports and saves as model.keras: last (the "
        "last epoch's) or best (the epoch with the best validation score on the images "
        "data.holdout keeps out of training; refused without them: the test split chooses "
        "nothing)")
    seed: int = option(42, "seed of data order, augmentation and initialization", SEED)
    deterministic: bool = option(False, "TensorFlow's deterministic ops (slower)")


@dataclasses.dataclass
class RuntimeConfig:
    strategy: Literal["default", "mirrored", "multi_worker", "tpu"] = option(
        "default", "tf.distribute strategy")
    virtual_cpus: int = option(0, "split the CPU into N logical devices (mirrored tests)",
                               NON_NEGATIVE)
    tpu_address: str = option("", "tpu: the TPU name or grpc:// address")
    mixed_precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = option(
        "float32", "compute precision (variables stay float32)")
    sync_batch_norm: bool = option(
        False, "BatchNorm statistics over the global batch, not per replica")
    jit_compile: bool = option(False, "XLA (slower for these convs on CPU)")
    threads: int = option(0, "TensorFlow intra-op threads (0: TensorFlow's choice)",
                          NON_NEGATIVE)


@dataclasses.dataclass
class ExportConfig:
    modes: list[Literal["float32", "float16", "dynamic_range", "int8", "int16x8"]] = option(
        ["float32", "int8"], "TFLite files to write")
    calibration_samples: int = option(200, "training images that calibrate int8 ranges",
                                      POSITIVE)
    int8_input: Literal["uint8", "int8", "float32"] = option(
        "uint8", "int8 files' input type (uint8: camera bytes)")
    int8_output: Literal["uint8", "int8", "float32"] = option(
        "float32", "int8 files' output type (float32: the softmax runs inside XNNPACK)")
    max_drop: float = option(2.0, "top-1 points (detection: mAP@.5 points) an export may lose "
                             "against the float model", NON_NEGATIVE)
    float_layers: list[str] = option(
        [], "int8 / int16x8: Keras layers left in float (names, or regexes matching whole "
        "names)")
    verify_limit: int = option(0, "evaluation images used to verify exports (0: all)",
                               NON_NEGATIVE)
    metadata: bool = option(True, "labels and input/output descriptions for Android in each "
                            "file")
    rgb_input: bool = option(
        True, "a model of 1 input channel exports to files taking RGB pixels (Android's "
        "clients give RGB), computing the model on their luma")
    debug: bool = option(False, "per-layer error report for every int8 / int16x8 file, not "
                         "only the failed ones")
    debug_samples: int = option(64, "images the quantization debugger runs", POSITIVE)


@dataclasses.dataclass
class QatConfig:
    enabled: bool = option(
        False, "quantization-aware training: the train section's run (usually a short, low "
        "learning-rate fine-tune of model.init_from) trains a fake-quantized twin of the model, "
        "and export writes export/model_qat_int8.tflite instead of export.modes")
    freeze_bn_after_epochs: int | None = option(
        None, "from this epoch BatchNorm uses and keeps its moving statistics", NON_NEGATIVE)
    freeze_ranges_after_epochs: int | None = option(
        None, "from this epoch quantizer ranges (and BatchNorm) are fixed", NON_NEGATIVE)


@dataclasses.dataclass
class Config:
    task: object = dataclasses.field(default_factory=lambda: task_config_class()())
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    qat: QatConfig = dataclasses.field(default_factory=QatConfig)


def load(path, overrides=()):
    """Reads the YAML experiment at `path` (and the files it names as `base:`), applies
    `--set key.path=value` overrides, checks it.

    Returns a `Config`. Raises `UserError` for a missing file, a YAML syntax error (with its
    line), an unknown key, a wrong type or an out-of-range value.
    """
    data = read(path)
    for override in overrides:
        apply_override(data, override)
    return from_dict(data)


def read(path, _seen=()):
    """The nested dict of the YAML file at `path`, merged over the files it names as `base:`
    (relative to itself; a base may have a base)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise UserError(f"{path}: base: files include each other "
                        f"({' -> '.join(p.name for p in _seen)} -> {path.name})")
    data = _parse(path)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise UserError(f"{path}: base: expected the path of a YAML file, got {_show(base)}")
    return merge(read(path.parent / base, (*_seen, path.resolve())), data)


def merge(base, override):
    """`override` merged into `base`: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _parse(path):
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes is too large for a config file "
                        f"(at most {MAX_FILE_BYTES})")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") \
            from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = ""
        if error.context and error.context_mark and error.context_mark is not mark:
            context = f" ({error.context} at line {error.context_mark.line + 1})"
        raise UserError(f"{path}: YAML syntax error{where}: {error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise UserError(f"{path}: YAML syntax error: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections, "
                        f"got {type(data).__name__}")
    return data


def apply_override(data, override):
    """Sets `key.path=value` (value parsed as YAML; empty means empty) in the nested dict."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key.path=value, got {_clip(override)!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {key}: cannot parse {_clip(text)!r} as YAML") from None
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def from_dict(data):
    """Builds a checked `Config` from nested dicts (as read from YAML)."""
    config = _build(Config, _migrate(data), "")
    _check_model(config.model)
    if config.qat.enabled and config.train.ema_decay:
        raise UserError("train.ema_decay must be 0 with qat.enabled (QAT keeps no averages)")
    if config.runtime.strategy == "multi_worker" and config.train.ema_decay:
        raise UserError("train.ema_decay must be 0 with runtime.strategy multi_worker (it trains "
                        "the tf_keras twin of the model, whose averages are not carried over)")
    if config.qat.enabled and config.export.int8_output != "float32":
        raise UserError("export.int8_output must be float32 with qat.enabled (a QAT file's "
                        "classifier and softmax run in float)")
    if config.qat.enabled and config.runtime.mixed_precision != "float32":
        raise UserError("runtime.mixed_precision must be float32 with qat.enabled (tfmot's "
                        "fake quantization runs in float32)")
    _check_fine_tuning(config)
    _check_task(config)
    if config.train.select == "best" and not config.data.holdout:
        raise UserError("train.select: best picks the model by its validation score, which "
                        "needs images held out of training: set data.holdout (e.g. 0.1); "
                        "without it training validates on the evaluation split, and the "
                        "model reported must not be chosen on the images it is scored on")
    if config.train.optimizer == "sgd" and config.train.epsilon is not None:
        raise UserError("train.epsilon: SGD has no epsilon (it is for rmsprop, adam, adamw)")
    return config


def _check_task(config):
    """A registered task, and what it needs of the other sections (`Task.check_config`)."""
    from mobilenets import tasks

    if config.task.name not in tasks.TASKS:
        close = difflib.get_close_matches(config.task.name, list(tasks.TASKS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"task.name: unknown task {_clip(repr(config.task.name))}{hint}; "
                        f"valid: {', '.join(tasks.TASKS)}")
    problem = tasks.get(config.task).check_config(config)
    if problem:
        raise UserError(problem)


def _migrate(data):
    """`data` with the task keys that moved into a task's section read there, each with a
    warning naming its new place."""
    task = data.get("task")
    if not isinstance(task, dict):
        return data
    for key in [k for k in task if k in MOVED_TASK_KEYS]:
        section = MOVED_TASK_KEYS[key]
        log.warning("config: task.%s is now task.%s.%s (read as such; write it there)", key,
                    section, key)
        moved = task.setdefault(section, {})
        if isinstance(moved, dict):
            moved.setdefault(key, task.pop(key))
    return data


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


def to_dict(config):
    """The config as plain nested dicts and lists (YAML-writable)."""
    return dataclasses.asdict(config)


def dump(config):
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def section_class(cls, name):
    """The type of field `name` of the schema class `cls` (the task section's is built from
    the registered tasks)."""
    if cls is Config and name == "task":
        return task_config_class()
    return typing.get_type_hints(cls)[name]


def fields(cls=Config, prefix="", types=False):
    """Yields (key path, dataclass field) of every key of the schema, in order; with `types`,
    (key path, field, its type)."""
    for field in dataclasses.fields(cls):
        hint = section_class(cls, field.name)
        if dataclasses.is_dataclass(hint):
            yield from fields(hint, f"{prefix}{field.name}.", types)
        else:
            yield (f"{prefix}{field.name}", field, hint) if types else (
                f"{prefix}{field.name}", field)


def _build(cls, data, prefix):
    if not isinstance(data, dict):
        raise UserError(f"{prefix[:-1] or 'config'}: expected a mapping, got {_show(data)}")
    fields_ = {field.name: field for field in dataclasses.fields(cls)}
    for key in data:
        if key not in fields_:
            path = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(fields_), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise UserError(f"unknown config key {_clip(path)}{hint}; valid keys"
                            f"{' in ' + prefix[:-1] if prefix else ''}: {', '.join(fields_)}")
    values = {}
    for name, field in fields_.items():
        if name not in data:
            continue
        hint = section_class(cls, name)
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data[name] or {}, f"{path}.")
            continue
        value = _coerce(data[name], hint, path)
        check = field.metadata.get("check")
        if check is not None and value is not None:
            check.check(path, value)
        values[name] = value
    return cls(**values)


def _coerce(value, hint, path):
    """Checks `value` against the type `hint`; returns it (ints widened to floats)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], path)
    if origin is Literal:
        if value not in args:
            close = difflib.get_close_matches(str(value), [str(a) for a in args], n=1)
            hint_text = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"{path}: {_show(value)} is not one of "
                            f"{', '.join(map(str, args))}{hint_text}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path}: expected a list, got {_show(value)}")
        return [_coerce(item, args[0], f"{path}[{i}]") for i, item in enumerate(value)]
    if hint is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UserError(f"{path}: expected a mapping, got {_show(value)}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}: expected a number, got {_show(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{path} must be a finite number, got {value}")
        return value
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise UserError(f"{path}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported config type {hint} at {path}")


def _show(value):
    return f"{_clip(repr(value))} ({type(value).__name__})"


def _clip(text, limit=80):
    """`text` cut to `limit` characters: error messages never echo a huge value."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
            raise UserError(f"model.weights: {_clip(model.weights)} is neither imagenet, a "
                            "keras.applications .h5 file nor a PyTorch checkpoint "
                            f"({', '.join(SUFFIXES)})")
        if not path.is_file():
            raise UserError(f"model.weights: no file {_clip(model.weights)}")
        torch = path.suffix in SUFFIXES
    wanted = "symmetric" if torch else "same"
    if model.padding != wanted:
        source = "PyTorch checkpoints were" if torch else "keras.applications' weights were"
        raise UserError(f"model.weights: {source} trained with padding: {wanted}, set "
                        f"model.padding: {wanted}")


def _check_model(model):
    from mobilenets.models.registry import COMMON_OPTIONS, list_models, model_options

    if model.name not in list_models():
        close = difflib.get_close_matches(model.name, list_models(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"model.name: unknown model {_clip(repr(model.name))}{hint}; "
                        f"valid: {', '.join(list_models())}")
    shape = model.input_shape
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) <= 0:
        raise UserError(f"model.input_shape must be [height, width, 1 or 3], got {shape}")
    _check_weights(model)
    family = [o for o in model_options(model.name) if o not in COMMON_OPTIONS]
    for key in model.options:
        if key not in family or key == "alpha":
            close = difflib.get_close_matches(str(key), family, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"model.options.{_clip(key)}: not an option of {model.name}{hint}; "
                            f"valid: {', '.join(o for o in family if o != 'alpha') or 'none'}")
