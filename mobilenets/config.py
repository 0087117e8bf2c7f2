"""The experiment schema: typed sections with defaults, YAML loading, `--set` overrides, checks.

A YAML experiment overrides only what differs from these defaults. Unknown keys, wrong types
and out-of-range values raise `UserError` naming the key path (`train.batch_size`), with a
suggestion for near misses.
"""

import dataclasses
import difflib
import pathlib
import types
import typing
from typing import Literal

import yaml

from mobilenets.errors import UserError


@dataclasses.dataclass
class ModelConfig:
    name: str = "mobilenet_v2"
    alpha: float = 1.0
    input_shape: list[int] = dataclasses.field(default_factory=lambda: [224, 224, 3])
    num_classes: int | None = None  # None: the number of classes of the data
    dropout: float | None = None  # None: the family's reference value
    options: dict = dataclasses.field(default_factory=dict)  # family options, e.g. minimalistic
    init_from: str = ""  # a float .keras file of the same architecture to start from


@dataclasses.dataclass
class DataConfig:
    source: Literal["sample", "fashion_mnist", "folder", "tfds"] = "sample"
    dir: str = ""  # folder root, Fashion-MNIST IDX folder, or the tfds data_dir
    # sample: evaluate on the full Fashion-MNIST test set when it is installed (data.dir or
    # the Debian package's folder), else on the bundled 2,000-image test sample.
    full_test_set: bool = True
    name: str = ""  # tfds dataset name, e.g. imagenet2012
    manual_dir: str = ""  # tfds manual download folder (imagenet2012)
    train_split: str = "train"  # tfds split or folder subfolder
    eval_split: str = "test"  # tfds split or folder subfolder ("" with validation_fraction)
    validation_fraction: float = 0.0  # folder without split subfolders: held-out fraction
    augment: Literal["inception", "flip_crop", "flip", "none"] = "inception"
    min_crop_area: float = 0.08  # inception crop: smallest fraction of the image kept
    crop_padding: int = 0  # flip_crop: zero pixels added on each side (0: 1/8 of the height)
    erase_probability: float = 0.0  # random erasing: chance a rectangle becomes noise
    crop_fraction: float = 0.875  # evaluation: central crop after resizing (1.0: no crop)
    small_images: Literal["resize", "pad"] = "resize"  # images smaller than the model input
    corrupt_images: Literal["skip", "error"] = "skip"  # undecodable files: skip or stop
    cache: bool = True  # keep decoded images in memory when they fit (see max_cache_mb)
    max_cache_mb: int = 4096
    train_limit: int = 0  # use only the first N training images (0: all)
    eval_limit: int = 0  # use only the first N evaluation images (0: all)


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 32  # global batch size, across replicas
    per_replica_batch_size: int = 0  # if set, the global batch is this times the replicas
    optimizer: Literal["rmsprop", "sgd", "adam", "adamw"] = "rmsprop"
    learning_rate: float = 0.045  # for base_batch_size images per step
    base_batch_size: int = 0  # scale the learning rate by batch_size / base_batch_size (0: off)
    momentum: float = 0.9  # SGD and RMSProp momentum
    nesterov: bool = False
    rho: float = 0.9  # RMSProp decay
    epsilon: float = 1.0  # RMSProp / Adam epsilon; 1.0 is TF-slim's RMSProp value for MobileNets
    schedule: Literal["exponential", "cosine", "linear", "step", "constant"] = "exponential"
    decay_rate: float = 0.98  # exponential: factor per decay_epochs
    decay_epochs: float = 1.0
    step_epochs: list[float] = dataclasses.field(default_factory=lambda: [30.0, 60.0, 80.0])
    step_factor: float = 0.1
    min_learning_rate: float = 0.0  # where cosine and linear end
    warmup_epochs: float = 0.0  # linear warmup from 0
    label_smoothing: float = 0.1
    weight_decay: float = 4e-5
    weight_decay_mode: Literal["l2", "decoupled"] = "l2"
    bn_momentum: float = 0.99
    ema_decay: float = 0.0  # 0: off; e.g. 0.9999 for ImageNet
    clip_norm: float = 0.0  # global gradient norm clipping (0: off)
    checkpoint_steps: int = 0  # also checkpoint every N steps (0: at epoch ends only)
    keep_checkpoints: int = 3
    seed: int = 42
    deterministic: bool = False  # TF deterministic ops (slower)


@dataclasses.dataclass
class RuntimeConfig:
    strategy: Literal["default", "mirrored", "multi_worker", "tpu"] = "default"
    virtual_cpus: int = 0  # split the CPU into N logical devices (mirrored tests)
    tpu_address: str = ""
    mixed_precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    sync_batch_norm: bool = False  # BatchNorm statistics over the global batch, not per replica
    jit_compile: bool = False
    threads: int = 0  # TF intra-op threads (0: TensorFlow's choice)


@dataclasses.dataclass
class ExportConfig:
    modes: list[Literal["float32", "float16", "dynamic_range", "int8", "int16x8"]] = (
        dataclasses.field(default_factory=lambda: ["float32", "int8"]))
    calibration_samples: int = 200
    int8_input: Literal["uint8", "int8", "float32"] = "uint8"
    int8_output: Literal["uint8", "int8", "float32"] = "float32"  # float: softmax in XNNPACK
    max_drop: float = 2.0  # top-1 points an export may lose against the float model
    # int8 / int16x8: Keras layers left in float (names, or regexes matching whole names)
    float_layers: list[str] = dataclasses.field(default_factory=list)
    verify_limit: int = 0  # evaluation images used to verify exports (0: all)
    metadata: bool = True  # labels and input/output descriptions for Android in each file
    debug: bool = False  # per-layer error report for every int8 / int16x8 file, not only failed
    debug_samples: int = 64  # images the quantization debugger runs


@dataclasses.dataclass
class QatConfig:
    # Quantization-aware training: the `train` section's run (usually a short, low learning-rate
    # fine-tune of model.init_from) trains a fake-quantized tf_keras twin of the model, and the
    # export stage writes export/model_qat_int8.tflite instead of export.modes.
    enabled: bool = False
    freeze_bn_after_epochs: int | None = None  # then BatchNorm uses and keeps its statistics
    freeze_ranges_after_epochs: int | None = None  # then quantizer ranges (and BatchNorm) fixed


@dataclasses.dataclass
class Config:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
    qat: QatConfig = dataclasses.field(default_factory=QatConfig)


# Numbers that must be positive (> 0) or non-negative (>= 0), by key path.
POSITIVE = {"model.alpha", "train.batch_size", "train.learning_rate", "train.keep_checkpoints",
            "data.max_cache_mb", "train.decay_epochs", "train.decay_rate",
            "export.calibration_samples", "export.debug_samples"}
NON_NEGATIVE = {"train.epochs", "train.base_batch_size", "train.warmup_epochs",
                "train.weight_decay", "train.clip_norm", "train.checkpoint_steps",
                "train.min_learning_rate", "runtime.virtual_cpus", "runtime.threads",
                "data.train_limit", "data.eval_limit", "export.max_drop", "export.verify_limit",
                "train.momentum", "train.per_replica_batch_size", "qat.freeze_bn_after_epochs",
                "qat.freeze_ranges_after_epochs", "data.crop_padding"}
FRACTIONS = {"train.label_smoothing", "train.ema_decay", "train.bn_momentum",
             "data.validation_fraction", "train.rho", "data.min_crop_area",
             "data.crop_fraction", "model.dropout", "data.erase_probability"}  # within [0, 1]


def load(path, overrides=()):
    """Reads the YAML experiment at `path`, applies `--set key.path=value` overrides, checks it.

    Returns a `Config`. Raises `UserError` for a missing file, a YAML syntax error (with its
    line), an unknown key, a wrong type or an out-of-range value.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
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
    for override in overrides:
        apply_override(data, override)
    return from_dict(data)


def apply_override(data, override):
    """Sets `key.path=value` (value parsed as YAML; empty means empty) in the nested dict."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise UserError(f"--set expects key.path=value, got {override!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        raise UserError(f"--set {key}: cannot parse {text!r} as YAML") from None
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {part} is not a section")
    node[parts[-1]] = value


def from_dict(data):
    """Builds a checked `Config` from nested dicts (as read from YAML)."""
    config = _build(Config, data, "")
    _check_ranges(config)
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
    return config


def to_dict(config):
    """The config as plain nested dicts and lists (YAML-writable)."""
    return dataclasses.asdict(config)


def dump(config):
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def _build(cls, data, prefix):
    if not isinstance(data, dict):
        raise UserError(f"{prefix[:-1] or 'config'}: expected a mapping, got {_show(data)}")
    fields = {field.name: field for field in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            path = f"{prefix}{key}"
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise UserError(f"unknown config key {path}{hint}; valid keys"
                            f"{' in ' + prefix[:-1] if prefix else ''}: {', '.join(fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in fields:
        if name not in data:
            continue
        hint = hints[name]
        path = f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data[name] or {}, f"{path}.")
        else:
            values[name] = _coerce(data[name], hint, path)
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
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise UserError(f"{path}: expected a string, got {_show(value)}")
        return value
    raise TypeError(f"unsupported config type {hint} at {path}")


def _show(value):
    return f"{value!r} ({type(value).__name__})"


def _check_ranges(config):
    for section in dataclasses.fields(config):
        for field in dataclasses.fields(getattr(config, section.name)):
            path = f"{section.name}.{field.name}"
            value = getattr(getattr(config, section.name), field.name)
            if value is None:
                continue
            if path in POSITIVE and not value > 0:
                raise UserError(f"{path} must be > 0, got {value}")
            if path in NON_NEGATIVE and value < 0:
                raise UserError(f"{path} must be >= 0, got {value}")
            if path in FRACTIONS and not 0 <= value <= 1:
                raise UserError(f"{path} must be between 0 and 1, got {value}")


def _check_model(model):
    from mobilenets.models.registry import COMMON_OPTIONS, list_models, model_options

    if model.name not in list_models():
        close = difflib.get_close_matches(model.name, list_models(), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"model.name: unknown model {model.name!r}{hint}; "
                        f"valid: {', '.join(list_models())}")
    shape = model.input_shape
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) <= 0:
        raise UserError(f"model.input_shape must be [height, width, 1 or 3], got {shape}")
    family = [o for o in model_options(model.name) if o not in COMMON_OPTIONS]
    for key in model.options:
        if key not in family or key == "alpha":
            close = difflib.get_close_matches(str(key), family, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UserError(f"model.options.{key}: not an option of {model.name}{hint}; "
                            f"valid: {', '.join(o for o in family if o != 'alpha') or 'none'}")
