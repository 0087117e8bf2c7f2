"""The data sources: the bundled sample, Fashion-MNIST IDX files, image folders and tfds.

Each loader returns a `Data` of the splits asked for (`wanted`: "train", "eval"), the others
left None, so that evaluating a model does not decode the training images.
"""

import gzip
import logging
import os
import pathlib
import struct

import numpy as np
import tensorflow as tf

from mobilenets.data import eval_labels
from mobilenets.data.checks import checked_split
from mobilenets.data.splits import Data, RecordSplit, Split, annotations
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SAMPLE_DIR = pathlib.Path(__file__).resolve().parents[1] / "sample"
FASHION_MNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                         "shirt", "sneaker", "bag", "ankle boot"]
# What TensorFlow decodes, and what Pillow converts for it (data/decode.py).
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def read_idx(path):
    """Reads an IDX file (optionally gzipped): the format of MNIST and Fashion-MNIST."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise UserError(f"{path}: not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    array = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if array.size != np.prod(shape):
        raise UserError(f"{path}: truncated IDX file ({array.size} of {np.prod(shape)} values)")
    return array.reshape(shape)


def write_idx(path, array):
    """Writes a uint8 array as a gzipped IDX file."""
    array = np.ascontiguousarray(array, np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header + array.tobytes())


def _idx_split(folder, prefix):
    folder = pathlib.Path(folder)
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [folder / f"{prefix}-{kind}{suffix}" for suffix in (".gz", "")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise UserError(f"data.dir: {candidates[0]} not found (Fashion-MNIST IDX files; "
                            "on Debian: apt-get install dataset-fashion-mnist)")
        files.append(found)
    images, labels = read_idx(files[0]), read_idx(files[1])
    if len(images) != len(labels):
        raise UserError(f"{folder}: {len(images)} images but {len(labels)} labels ({prefix})")
    return Split(labels=labels.astype(np.int64), arrays=images[..., None])


def load_fashion_mnist(config, seed, wanted, channels):
    folder = config.dir or FASHION_MNIST_DIR
    if not pathlib.Path(folder).is_dir():
        raise UserError(f"data.dir: Fashion-MNIST folder {folder} not found "
                        "(on Debian: apt-get install dataset-fashion-mnist)")
    return Data(_idx_split(folder, "train") if "train" in wanted else None,
                _idx_split(folder, "t10k") if "eval" in wanted else None, FASHION_MNIST_CLASSES)


def load_sample(config, seed, wanted, channels):
    if not (SAMPLE_DIR / "t10k-labels-idx1-ubyte.gz").is_file():
        raise UserError(f"data.source sample: the bundled sample is missing from {SAMPLE_DIR} "
                        "(a broken install: reinstall mobilenets)")
    evaluation = None
    if "eval" in wanted:
        evaluation = _idx_split(SAMPLE_DIR, "t10k")
        full = pathlib.Path(config.dir or FASHION_MNIST_DIR)
        if config.full_test_set and any(full.glob("t10k-labels-idx1-ubyte*")):
            evaluation = _idx_split(full, "t10k")
            log.info("evaluating on the full Fashion-MNIST test set in %s (%d images)", full,
                     len(evaluation))
        else:
            log.info("evaluating on the bundled test sample (%d images)", len(evaluation))
    train = _idx_split(SAMPLE_DIR, "train") if "train" in wanted else None
    return Data(train, evaluation, FASHION_MNIST_CLASSES)


def load_folder(config, seed, wanted, channels):
    root = pathlib.Path(config.dir)
    if not config.dir or not root.is_dir():
        raise UserError(f"data.dir: image folder {config.dir!r} not found")
    train_root, eval_root = root / config.train_split, root / config.eval_split
    if config.eval_labels and not (config.eval_split and eval_root.is_dir()):
        raise UserError(f"data.eval_labels names the classes of the images in "
                        f"{eval_root}, which is not a folder (data.eval_split)")
    if config.eval_split and train_root.is_dir() and eval_root.is_dir():
        class_names = _class_folders(train_root)
        train = (_scan_folder(train_root, class_names, config, channels)
                 if "train" in wanted else None)
        scan = _scan_listed if config.eval_labels else _scan_folder
        evaluation = scan(eval_root, class_names, config, channels) if "eval" in wanted else None
    else:
        if not 0 < config.validation_fraction < 1:
            raise UserError(
                f"data: {root} has no {config.train_split!r} and {config.eval_split!r} "
                "subfolders; set data.validation_fraction (e.g. 0.1) to hold out part of it")
        class_names = _class_folders(root)
        everything = _scan_folder(root, class_names, config, channels)
        try:
            train, evaluation = everything.hold_out(config.validation_fraction, seed)
        except ValueError as error:
            raise UserError(f"data.validation_fraction {config.validation_fraction}: "
                            f"{error}") from None
    return Data(train, evaluation, class_names)


def _class_folders(root):
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError(f"data.dir: {root} has no class subfolders (expected one per class)")
    return names


def _images_in(folder):
    """The image files under `folder` (paths as strings, sorted), hidden files and folders
    (`.ipynb_checkpoints`, ...) left out; other files are counted by suffix in a warning, not
    silently dropped. One directory read per folder, no stat per file."""
    images, others = [], {}
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            suffix = os.path.splitext(name)[1].lower()
            if suffix in IMAGE_SUFFIXES:
                images.append(os.path.join(parent, name))
            else:
                others[suffix or "(none)"] = others.get(suffix or "(none)", 0) + 1
    if others:
        counts = ", ".join(f"{count} {suffix}" for suffix, count in sorted(others.items()))
        log.warning("left out %d file(s) in %s that are not images this reads (%s; it reads "
                    "%s)", sum(others.values()), folder, counts,
                    ", ".join(sorted(IMAGE_SUFFIXES)))
    return sorted(images)


def _scan_folder(root, class_names, config, channels):
    """Lists and checks the images of `root/<class>/`, one subfolder per class
    (`checks.checked_split`: each file decoded once as training will decode it, the verdicts
    remembered), so every image kept decodes."""
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            raise UserError(f"data.dir: class folder {folder} is missing (classes come from "
                            f"{root.parent / config.train_split})")
        files = _images_in(folder)
        if not files:
            raise UserError(f"data.dir: class folder {folder} has no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        paths += files
        labels += [label] * len(files)
    split = checked_split(root, paths, np.array(labels, np.int64), config, channels)
    for label, name in enumerate(class_names):
        if not (split.labels == label).any():
            raise UserError(f"data.dir: class folder {root / name} has no readable images")
    return split


def _scan_listed(root, class_names, config, channels):
    """Lists and checks the images of the flat folder `root`, their classes read from
    `data.eval_labels` (ImageNet's validation folder)."""
    files = _images_in(root)
    if not files:
        raise UserError(f"data.dir: {root} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    labels = eval_labels.read(config.eval_labels, files, class_names)
    return checked_split(root, files, labels, config, channels)


# The features that hold a tfds dataset's segmentation masks (oxford_iiit_pet, cityscapes).
MASK_FEATURES = ("segmentation_mask", "segmentation_label")


def load_tfds(config, seed, wanted, channels, masks=False):
    """The tfds dataset `data.name`: its classes, its objects (detection) or, with `masks`, its
    segmentation masks, named by `data.mask_classes` (tfds masks carry no class names)."""
    import tensorflow_datasets as tfds

    if not config.name:
        raise UserError("data.name: set the tfds dataset name (e.g. imagenet2012)")
    try:
        builder = tfds.builder(config.name, data_dir=config.dir or None)
    except Exception as error:  # tfds raises its own DatasetNotFoundError and friends
        raise UserError(f"data.name: tfds has no dataset {config.name!r} ({error})") from None
    if not builder.is_prepared():
        if not config.manual_dir:
            raise UserError(
                f"data: tfds dataset {config.name} is not prepared in "
                f"{builder.data_dir_root if hasattr(builder, 'data_dir_root') else config.dir}; "
                "prepare it (tfds build) or set data.manual_dir to its downloaded archives")
        if not pathlib.Path(config.manual_dir).is_dir():
            raise UserError(f"data.manual_dir: {config.manual_dir} not found")
        download = tfds.download.DownloadConfig(manual_dir=config.manual_dir)
        builder.download_and_prepare(download_config=download)
    features = builder.info.features
    mask_key = None
    if masks:
        mask_key = next((key for key in MASK_FEATURES if key in features), None)
        if mask_key is None:
            raise UserError(f"data.name: tfds dataset {config.name} has no segmentation masks "
                            f"(a feature named {' or '.join(MASK_FEATURES)})")
        if not config.mask_classes:
            raise UserError(f"data.mask_classes: name the classes of {config.name}'s mask "
                            "values 0, 1, ... (tfds masks carry no class names)")
        names = list(config.mask_classes)
    elif "label" in features:
        names = features["label"].names
    elif "objects" in features and "bbox" in features["objects"]:  # coco/2017, voc: detection
        names = features["objects"]["label"].names
    else:
        raise UserError(f"data.name: tfds dataset {config.name} has neither a 'label' (classes) "
                        "nor 'objects' with boxes (detection)")
    splits = builder.info.splits
    for split in (config.train_split, config.eval_split):
        if split.split("[")[0] not in splits:
            raise UserError(f"data: tfds dataset {config.name} has no split {split!r}; "
                            f"it has {', '.join(splits)}")
    return Data(
        _tfds_split(builder, config.train_split, config, mask_key) if "train" in wanted else None,
        _tfds_split(builder, config.eval_split, config, mask_key) if "eval" in wanted else None,
        names)


def _tfds_split(builder, split, config, mask_key=None):
    """A split's encoded images in memory (without decoding) if they fit in
    `data.max_cache_mb` and `data.cache` is on, else a `RecordSplit` streamed from disk.
    Labels are classes, a detection dataset's objects (`splits.annotations`; streamed, the
    first `MAX_STREAMED_OBJECTS` of an image), or the masks of feature `mask_key` (in memory:
    their PNG bytes)."""
    import tensorflow_datasets as tfds

    detection = mask_key is None and "label" not in builder.info.features
    kind = "masks" if mask_key else "objects" if detection else "classes"
    info = builder.info.splits[split]
    if not config.cache or info.num_bytes > config.max_cache_mb * 2**20:
        if "[" in split:
            raise UserError(f"data: split {split!r} of {builder.name} is too large to hold in "
                            "memory (data.max_cache_mb) and slices cannot be streamed; use a "
                            "whole split")
        decoders = {"image": tfds.decode.SkipDecoding()}

        def parse(serialized):
            example = builder.info.features.deserialize_example(serialized, decoders=decoders)
            if mask_key:
                return example["image"], tf.cast(example[mask_key], tf.uint8)
            if detection:
                return example["image"], padded_objects(example["objects"])
            return example["image"], tf.cast(example["label"], tf.int32)
        log.info("streaming %s[%s] from disk (%d images)", builder.name, split,
                 info.num_examples)
        return RecordSplit(files=[str(f) for f in info.filepaths], count=info.num_examples,
                           parse=parse, kind=kind, lengths=list(info.shard_lengths))
    decoders = {key: tfds.decode.SkipDecoding() for key in ("image", mask_key) if key}
    dataset = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
    encoded, labels = [], []
    for example in dataset.as_numpy_iterator():
        encoded.append(example["image"])
        labels.append(example[mask_key] if mask_key else kept_objects(example["objects"])
                      if detection else example["label"])
    if mask_key:  # each mask's PNG bytes, as the mask folders' (`splits.Split`)
        return Split(labels=np.array(labels, dtype=object),
                     encoded=np.array(encoded, dtype=object))
    if detection:
        return Split(labels=annotations(*zip(*labels)) if labels else np.zeros((0, 1, 5)),
                     encoded=np.array(encoded, dtype=object))
    return Split(labels=np.array(labels, np.int64), encoded=np.array(encoded, dtype=object))


# A streamed detection split pads every image's objects to this many (COCO's most: 93); the
# rest of a busier image are left out.
MAX_STREAMED_OBJECTS = 100


# The flags of a tfds example's objects that leave an object out: COCO's crowd regions and VOC's
# difficult objects, which their own evaluations ignore. (Left out of the truth, a detection of
# one counts as a false positive in the COCO mAP here, where VOC's metric would ignore it.)
LEFT_OUT = ("is_crowd", "is_difficult")


def kept_objects(objects):
    """(boxes, classes) of a tfds example's objects (numpy), those flagged `LEFT_OUT` left
    out."""
    keep = np.ones(len(objects["label"]), bool)
    for flag in LEFT_OUT:
        if flag in objects:
            keep &= ~np.asarray(objects[flag]).astype(bool)
    return objects["bbox"][keep], objects["label"][keep]


def padded_objects(objects):
    """A tfds example's objects (tensors) as [MAX_STREAMED_OBJECTS, 5] rows of
    `splits.annotations`."""
    keep = tf.ones_like(objects["label"], tf.bool)
    for flag in LEFT_OUT:
        if flag in objects:
            keep &= tf.logical_not(tf.cast(objects[flag], tf.bool))
    rows = tf.concat([tf.boolean_mask(tf.cast(objects["bbox"], tf.float32), keep),
                      tf.cast(tf.boolean_mask(objects["label"], keep), tf.float32)[:, None]], 1)
    rows = rows[:MAX_STREAMED_OBJECTS]
    return tf.pad(rows, [[0, MAX_STREAMED_OBJECTS - tf.shape(rows)[0]], [0, 0]],
                  constant_values=-1.0)
