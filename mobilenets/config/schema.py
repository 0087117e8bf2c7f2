"""The experiment schema: each section a dataclass of keys, each key declared once with its
default, its meaning and its allowed range (`option`).

The optimizer and the schedule are choose-one sections (`one_of`): `type` names the one used and
only its sub-section may be set (`train.optimizer: {type: sgd, sgd: {nesterov: true}}`; a bare
name, `train.optimizer: sgd`, is the type with its defaults). A task's own section comes from the
task (`Task.Config`), so the schema grows with the registered tasks.
"""

import dataclasses
import functools
from typing import Literal

from mobilenets.schema import FRACTION, NON_NEGATIVE, POSITIVE, SEED, Range, option

# Pillow refuses to open images above this many pixels (twice its MAX_IMAGE_PIXELS).
PILLOW_PIXEL_BOUND = 2 * 89_478_485


def is_one_of(cls):
    """Whether schema class `cls` is a choose-one section: a `type` and a sub-section for
    each choice that has keys."""
    return dataclasses.is_dataclass(cls) and "type" in {f.name for f in dataclasses.fields(cls)}


def chosen(section):
    """The sub-section of a choose-one section that its `type` names (None if it has none)."""
    return getattr(section, section.type, None)


@dataclasses.dataclass
class RmspropConfig:
    momentum: float = option(0.9, "momentum of the update", FRACTION)
    rho: float = option(0.9, "decay of the average of squared gradients", FRACTION)
    epsilon: float = option(1.0, "added to the root of that average (TF-slim's 1.0, what the "
                            "MobileNetV1 and V2 papers trained with; Keras' default: 1e-7)",
                            POSITIVE)


@dataclasses.dataclass
class SgdConfig:
    momentum: float = option(0.9, "momentum of the update", FRACTION)
    nesterov: bool = option(False, "Nesterov momentum")


@dataclasses.dataclass
class AdamConfig:
    beta_1: float = option(0.9, "first-moment decay", Range(0, 1, high_open=True))
    beta_2: float = option(0.999, "second-moment decay", Range(0, 1, high_open=True))
    epsilon: float = option(1e-7, "added to the root of the second moment (Keras' default)",
                            POSITIVE)


@dataclasses.dataclass
class AdamwConfig(AdamConfig):
    """Adam's keys; its weight decay is train.weight_decay with weight_decay_mode: decoupled."""


@dataclasses.dataclass
class OptimizerConfig:
    type: Literal["rmsprop", "sgd", "adam", "adamw"] = option(
        "rmsprop", "the optimizer; its keys in the sub-section of its name")
    rmsprop: RmspropConfig = dataclasses.field(default_factory=RmspropConfig)
    sgd: SgdConfig = dataclasses.field(default_factory=SgdConfig)
    adam: AdamConfig = dataclasses.field(default_factory=AdamConfig)
    adamw: AdamwConfig = dataclasses.field(default_factory=AdamwConfig)


@dataclasses.dataclass
class ExponentialConfig:
    decay_rate: float = option(0.98, "factor per decay_epochs", POSITIVE)
    decay_epochs: float = option(1.0, "epochs per decay step", POSITIVE)


@dataclasses.dataclass
class CosineConfig:
    min_learning_rate: float = option(0.0, "where the rate ends", NON_NEGATIVE)


@dataclasses.dataclass
class LinearConfig(CosineConfig):
    pass


@dataclasses.dataclass
class PolyConfig:
    power: float = option(0.9, "the power (DeepLab: 0.9)", POSITIVE)
    min_learning_rate: float = option(0.0, "where the rate ends", NON_NEGATIVE)


@dataclasses.dataclass
class StepConfig:
    epochs: list[float] = option([30.0, 60.0, 80.0], "epochs where the rate drops")
    factor: float = option(0.1, "the factor at each of those epochs", POSITIVE)


@dataclasses.dataclass
class ScheduleConfig:
    type: Literal["exponential", "cosine", "linear", "poly", "step", "constant"] = option(
        "exponential", "learning-rate schedule after warmup (poly: DeepLab's, the rate times "
        "(1 - progress) ** power); its keys in the sub-section of its name (constant has none)")
    exponential: ExponentialConfig = dataclasses.field(default_factory=ExponentialConfig)
    cosine: CosineConfig = dataclasses.field(default_factory=CosineConfig)
    linear: LinearConfig = dataclasses.field(default_factory=LinearConfig)
    poly: PolyConfig = dataclasses.field(default_factory=PolyConfig)
    step: StepConfig = dataclasses.field(default_factory=StepConfig)


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
    eval_labels: str = option(
        "", "folder: a file naming the class of each image of a flat evaluation folder "
        "(ImageNet's val/: no class subfolders): a .csv of file,label rows (Kaggle's "
        "LOC_val_solution.csv) or one label per line in the sorted order of the file names "
        "(TFDS's imagenet2012_validation_labels.txt); labels are the training class folders' "
        "names")
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
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    learning_rate: float = option(0.045, "peak learning rate, for base_batch_size images per "
                                  "step", POSITIVE)
    base_batch_size: int = option(
        0, "scale the learning rate by batch_size / base_batch_size (0: off)", NON_NEGATIVE)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
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
    quantizer: Literal["converter", "litert"] = option(
        "converter", "who makes the int8 file: converter (TensorFlow's TFLite converter) or "
        "litert (the LiteRT Quantizer, from the float32 file; classifiers and segmenters; "
        "QAT files keep the converter)")
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
    npu: list[str] = option(
        [], "NPU targets each int8 file is compiled for ahead of time (LiteRT's AOT compiler): "
        "qualcomm, mediatek, google_tensor or intel_openvino, each optionally :CHIP "
        "(qualcomm:SM8650); needs the vendor's SDK package (docs/android.md)")


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
