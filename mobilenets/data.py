"""Datasets and preprocessing: the bundled sample, Fashion-MNIST IDX files, image folders, tfds.

Every source becomes two `Split`s of random-access images (decoded arrays in memory, encoded
bytes in memory, or file paths) and a list of class names. The training stream is a function of
(seed, position): each epoch is a seeded permutation of the indices and each image's
augmentation is seeded by its position in the stream, so a resumed run sees exactly the images
the interrupted one would have, starting from any step, without decoding the skipped ones.

Images leave the pipeline as float32 pixels in [0, 255]; normalization is inside the model.
"""

import concurrent.futures
import dataclasses
import gzip
import io
import logging
import os
import pathlib
import struct

import numpy as np
import tensorflow as tf

from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
SAMPLE_DIR = pathlib.Path(__file__).parent / "sample"
FASHION_MNIST_CLASSES = ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal",
                         "shirt", "sneaker", "bag", "ankle boot"]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif"}


@dataclasses.dataclass
class Split:
    """Images addressable by index: exactly one of `arrays`, `encoded` or `paths` is set."""

    labels: np.ndarray
    arrays: np.ndarray | None = None  # uint8 (N, H, W, C), all one size
    encoded: np.ndarray | None = None  # object array of encoded image bytes
    paths: np.ndarray | None = None  # object array of file paths

    def __len__(self):
        return len(self.labels)

    def limit(self, count):
        """The first `count` images (all if 0)."""
        if not count or count >= len(self):
            return self
        return Split(*(None if a is None else a[:count] for a in (
            self.labels, self.arrays, self.encoded, self.paths)))

    def load_fn(self, channels):
        """A tf function index -> (uint8 image H x W x channels, int32 label)."""
        labels = tf.constant(self.labels.astype(np.int32))
        if self.arrays is not None:
            arrays = tf.constant(self.arrays)

            def load(index):
                return _convert_channels(tf.gather(arrays, index), channels), labels[index]
        else:
            source = tf.constant((self.encoded if self.encoded is not None
                                  else self.paths).astype(bytes))
            from_files = self.encoded is None

            def load(index):
                data = source[index]
                if from_files:
                    data = tf.io.read_file(data)
                image = tf.io.decode_image(data, channels=channels, expand_animations=False)
                return image, labels[index]
        return load


    def ordered(self, channels):
        """The images in order: a dataset of (uint8 image, int32 label)."""
        return tf.data.Dataset.range(len(self)).map(self.load_fn(channels),
                                                    num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_items(self, seed, epoch):
        """One epoch in a seeded order, as items for `item_loader` (here: indices)."""
        order = tf.random.experimental.stateless_shuffle(tf.range(len(self), dtype=tf.int64),
                                                         seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    def item_loader(self, channels):
        return self.load_fn(channels)


@dataclasses.dataclass
class RecordSplit:
    """A tfds split too large for memory, streamed from its record files.

    An epoch reads the files in a seeded order, interleaved, through a seeded shuffle buffer,
    so the order is still a function of (seed, epoch); a resumed run skips records (without
    decoding them) up to where it stopped.
    """

    files: list  # record files, in shard order
    count: int  # images used per epoch
    parse: object  # serialized example -> (encoded image, int32 label)
    shuffle_buffer: int = 10000

    def __len__(self):
        return self.count

    def limit(self, count):
        if not count or count >= self.count:
            return self
        return dataclasses.replace(self, count=count)

    def _records(self, files):
        return tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=min(16, len(self.files)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def ordered(self, channels):
        load = self.item_loader(channels)
        return tf.data.TFRecordDataset(self.files).take(self.count).map(
            lambda serialized: load(self.parse(serialized)),
            num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_items(self, seed, epoch):
        files = tf.random.experimental.stateless_shuffle(tf.constant(self.files),
                                                         seed=tf.stack([seed, epoch]))
        return self._records(files).shuffle(self.shuffle_buffer, seed=seed).take(self.count).map(
            self.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def item_loader(self, channels):
        def decode(encoded, label):
            return tf.io.decode_image(encoded, channels=channels, expand_animations=False), label
        return lambda item: decode(*item)


@dataclasses.dataclass
class Data:
    train: Split
    eval: Split
    class_names: list


def load(config, seed=0):
    """Loads the train and evaluation splits named by a `DataConfig`."""
    loaders = {"sample": _load_sample, "fashion_mnist": _load_fashion_mnist,
               "folder": _load_folder, "tfds": _load_tfds}
    config = dataclasses.replace(config, dir=os.path.expanduser(config.dir),
                                 manual_dir=os.path.expanduser(config.manual_dir))
    data = loaders[config.source](config, seed)
    data.train = data.train.limit(config.train_limit)
    data.eval = data.eval.limit(config.eval_limit)
    if len(data.train) == 0:
        raise UserError(f"data: the training split of {config.source} has no images")
    if len(data.eval) == 0:
        raise UserError(f"data: the evaluation split of {config.source} has no images")
    return data


# --- Fashion-MNIST and the bundled sample (IDX files) ---------------------------------------

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


def _load_fashion_mnist(config, seed):
    folder = config.dir or FASHION_MNIST_DIR
    if not pathlib.Path(folder).is_dir():
        raise UserError(f"data.dir: Fashion-MNIST folder {folder} not found "
                        "(on Debian: apt-get install dataset-fashion-mnist)")
    return Data(_idx_split(folder, "train"), _idx_split(folder, "t10k"), FASHION_MNIST_CLASSES)


def _load_sample(config, seed):
    evaluation = _idx_split(SAMPLE_DIR, "t10k")
    full = pathlib.Path(config.dir or FASHION_MNIST_DIR)
    if config.full_test_set and any(full.glob("t10k-labels-idx1-ubyte*")):
        evaluation = _idx_split(full, "t10k")
        log.info("evaluating on the full Fashion-MNIST test set in %s (%d images)", full,
                 len(evaluation))
    else:
        log.info("evaluating on the bundled test sample (%d images)", len(evaluation))
    return Data(_idx_split(SAMPLE_DIR, "train"), evaluation, FASHION_MNIST_CLASSES)


# --- Image folders ----------------------------------------------------------------------

def _load_folder(config, seed):
    root = pathlib.Path(config.dir)
    if not config.dir or not root.is_dir():
        raise UserError(f"data.dir: image folder {config.dir!r} not found")
    train_root, eval_root = root / config.train_split, root / config.eval_split
    if config.eval_split and train_root.is_dir() and eval_root.is_dir():
        class_names = _class_folders(train_root)
        train = _scan_folder(train_root, class_names, config)
        evaluation = _scan_folder(eval_root, class_names, config)
    else:
        if not 0 < config.validation_fraction < 1:
            raise UserError(
                f"data: {root} has no {config.train_split!r} and {config.eval_split!r} "
                "subfolders; set data.validation_fraction (e.g. 0.1) to hold out part of it")
        class_names = _class_folders(root)
        everything = _scan_folder(root, class_names, config)
        train, evaluation = _split_by_fraction(everything, config.validation_fraction, seed)
    return Data(train, evaluation, class_names)


def _class_folders(root):
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError(f"data.dir: {root} has no class subfolders (expected one per class)")
    return names


def _scan_folder(root, class_names, config):
    """Lists (and checks) the images of `root/<class>/`, one subfolder per class."""
    paths, labels = [], []
    for label, name in enumerate(class_names):
        folder = root / name
        if not folder.is_dir():
            raise UserError(f"data.dir: class folder {folder} is missing (classes come from "
                            f"{root.parent / config.train_split})")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"data.dir: class folder {folder} has no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    paths, labels = np.array(paths, dtype=object), np.array(labels, dtype=np.int64)
    encoded = _read_and_check(paths, config)
    keep = np.array([e is not None for e in encoded])
    if not keep.all():
        bad = paths[~keep]
        if config.corrupt_images == "error":
            raise UserError(f"data: cannot decode image {bad[0]} (set data.corrupt_images: "
                            "skip to leave such files out)")
        log.warning("skipped %d corrupt or truncated image(s) in %s, e.g. %s", len(bad), root,
                    ", ".join(bad[:3]))
    paths, labels = paths[keep], labels[keep]
    for label, name in enumerate(class_names):
        if not (labels == label).any():
            raise UserError(f"data.dir: class folder {root / name} has no readable images")
    total = sum(len(e) for e in encoded if e is not None)
    if config.cache and total <= config.max_cache_mb * 2**20:
        return Split(labels=labels, encoded=np.array([e for e in encoded if e is not None],
                                                     dtype=object))
    return Split(labels=labels, paths=paths)


def _read_and_check(paths, config):
    """Reads every file and checks that it decodes whole; None for those that do not."""
    from PIL import Image

    def check(path):
        try:
            data = pathlib.Path(path).read_bytes()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
            return data
        except (OSError, SyntaxError, ValueError):
            return None

    workers = min(8, (os.cpu_count() or 1) * 2)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(check, paths))


def _split_by_fraction(split, fraction, seed):
    """Holds out `fraction` of each class (seeded), so both parts keep every class."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(split), bool)
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        count = max(1, int(round(len(members) * fraction)))
        if count >= len(members):
            raise UserError(f"data.validation_fraction {fraction} leaves no training image "
                            f"in class {label}")
        held[rng.choice(members, count, replace=False)] = True

    def part(mask):
        return Split(*(None if a is None else a[mask] for a in (
            split.labels, split.arrays, split.encoded, split.paths)))
    return part(~held), part(held)


# --- TensorFlow Datasets ----------------------------------------------------------------

def _load_tfds(config, seed):
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
    names = builder.info.features["label"].names
    splits = builder.info.splits
    for split in (config.train_split, config.eval_split):
        if split.split("[")[0] not in splits:
            raise UserError(f"data: tfds dataset {config.name} has no split {split!r}; "
                            f"it has {', '.join(splits)}")
    return Data(_tfds_split(builder, config.train_split, config),
                _tfds_split(builder, config.eval_split, config), names)


def _tfds_split(builder, split, config):
    """A split's encoded images in memory (without decoding) if they fit in
    `data.max_cache_mb` and `data.cache` is on, else a `RecordSplit` streamed from disk."""
    import tensorflow_datasets as tfds

    info = builder.info.splits[split]
    if not config.cache or info.num_bytes > config.max_cache_mb * 2**20:
        if "[" in split:
            raise UserError(f"data: split {split!r} of {builder.name} is too large to hold in "
                            "memory (data.max_cache_mb) and slices cannot be streamed; use a "
                            "whole split")
        decoders = {"image": tfds.decode.SkipDecoding()}

        def parse(serialized):
            example = builder.info.features.deserialize_example(serialized, decoders=decoders)
            return example["image"], tf.cast(example["label"], tf.int32)
        log.info("streaming %s[%s] from disk (%d images)", builder.name, split,
                 info.num_examples)
        return RecordSplit(files=[str(f) for f in info.filepaths], count=info.num_examples,
                           parse=parse)
    dataset = builder.as_dataset(split=split, shuffle_files=False,
                                 decoders={"image": tfds.decode.SkipDecoding()})
    encoded, labels = [], []
    for example in dataset.as_numpy_iterator():
        encoded.append(example["image"])
        labels.append(example["label"])
    return Split(labels=np.array(labels, np.int64), encoded=np.array(encoded, dtype=object))


# --- Preprocessing and pipelines -------------------------------------------------------

def _convert_channels(image, channels):
    """Gray to RGB or RGB to gray, for arrays whose channel count is known statically."""
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


def _fit(image, height, width, small_images):
    """Resizes to (height, width), or zero-pads images that are not larger ("pad")."""
    if small_images == "pad":
        shape = tf.shape(image)
        fits = tf.logical_and(shape[0] <= height, shape[1] <= width)
        return tf.cond(fits,
                       lambda: tf.image.resize_with_crop_or_pad(image, height, width),
                       lambda: tf.image.resize(image, (height, width)))
    return tf.image.resize(image, (height, width))


def train_transform(image, seed, shape, config):
    """Augments one uint8 image with stateless ops seeded by `seed` (a [2] int tensor)."""
    height, width, _ = shape
    image = tf.cast(image, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if config.augment == "inception":
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([1, 0, 4]), seed=seeds[0], min_object_covered=0.1,
            aspect_ratio_range=(3 / 4, 4 / 3), area_range=(config.min_crop_area, 1.0),
            max_attempts=10, use_image_if_no_bounding_boxes=True)
        image = tf.image.resize(tf.slice(image, begin, size), (height, width))
    else:
        image = _fit(image, height, width, config.small_images)
        if config.augment == "flip_crop":
            pad = config.crop_padding or max(1, height // 8)
            image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
            image = tf.image.stateless_random_crop(image, (height, width, shape[2]), seeds[0])
    if config.augment != "none":
        image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    if config.erase_probability > 0:
        image = random_erase(image, seeds[2], config.erase_probability)
    return tf.clip_by_value(tf.ensure_shape(image, shape), 0.0, 255.0)


def random_erase(image, seed, probability, area_range=(0.02, 0.4), min_aspect=0.3):
    """Random erasing (Zhong et al., 2017): with `probability`, a rectangle becomes noise.

    The rectangle covers a uniform `area_range` fraction of the image with a log-uniform aspect
    ratio in [min_aspect, 1 / min_aspect], clipped to the image, at a uniform position, and
    is filled with uniform noise in [0, 255]. keras.layers.RandomErasing does the same from a
    stateful seed generator; this one is seeded like the other ops here, so a resumed run
    erases the same rectangles.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    area = tf.cast(height * width, tf.float32)
    draw = tf.random.stateless_uniform([4], seeds[0])
    fraction = area_range[0] + (area_range[1] - area_range[0]) * draw[0]
    aspect = tf.exp(tf.math.log(min_aspect) * (2 * draw[1] - 1))
    erase_h = tf.minimum(height, tf.cast(tf.round(tf.sqrt(fraction * area * aspect)), tf.int32))
    erase_w = tf.minimum(width, tf.cast(tf.round(tf.sqrt(fraction * area / aspect)), tf.int32))
    top = tf.cast(draw[2] * tf.cast(height - erase_h + 1, tf.float32), tf.int32)
    left = tf.cast(draw[3] * tf.cast(width - erase_w + 1, tf.float32), tf.int32)
    rows = tf.range(height)[:, None, None]
    cols = tf.range(width)[None, :, None]
    inside = (rows >= top) & (rows < top + erase_h) & (cols >= left) & (cols < left + erase_w)
    erase = tf.random.stateless_uniform([], seeds[1]) < probability
    noise = tf.random.stateless_uniform(tf.shape(image), seeds[2], maxval=255.0)
    return tf.where(inside & erase, noise, image)


def eval_transform(image, shape, config):
    """Resizes (then crops the central `crop_fraction`) or pads one uint8 image."""
    height, width, _ = shape
    image = tf.cast(image, tf.float32)
    if config.crop_fraction < 1.0 and config.small_images != "pad":
        outer = (int(round(height / config.crop_fraction)), int(round(width / config.crop_fraction)))
        image = tf.image.resize(image, outer)
        image = tf.image.resize_with_crop_or_pad(image, height, width)
    else:
        image = _fit(image, height, width, config.small_images)
    return tf.clip_by_value(tf.ensure_shape(image, shape), 0.0, 255.0)


def train_dataset(split, config, shape, num_classes, batch_size, seed, start_step=0,
                  shard=(1, 0), replica_batch=None):
    """The endless training stream in batches of `batch_size`, starting at batch `start_step`.

    `shard=(count, index)` keeps every count-th image of the stream (one input pipeline of
    several), batched in `replica_batch` images (default batch_size / count).
    """
    start = start_step * batch_size
    first_epoch, offset = divmod(start, len(split))
    load = split.item_loader(shape[2])
    items = tf.data.Dataset.range(first_epoch, 2**62).flat_map(
        lambda epoch: split.epoch_items(seed, epoch)).skip(offset)
    stream = tf.data.Dataset.zip(tf.data.Dataset.range(start, 2**62), items)
    if shard[0] > 1:
        stream = stream.shard(*shard)

    def element(position, item):
        image, label = load(item)
        image = train_transform(image, tf.stack([tf.cast(seed, tf.int64), position]), shape,
                                config)
        return image, tf.one_hot(label, num_classes)

    stream = stream.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if config.corrupt_images == "skip":
        stream = stream.ignore_errors(log_warning=True)
    return stream.batch(replica_batch or batch_size // shard[0],
                        drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_dataset(split, config, shape, num_classes, batch_size):
    """The evaluation split in order, batched (the last batch may be smaller)."""
    def element(image, label):
        return eval_transform(image, shape, config), tf.one_hot(label, num_classes)

    stream = split.ordered(shape[2]).map(element, num_parallel_calls=tf.data.AUTOTUNE,
                                         deterministic=True)
    if config.corrupt_images == "skip":
        stream = stream.ignore_errors(log_warning=True)
    return stream.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def calibration_images(split, config, shape, count):
    """Yields `count` evaluation-preprocessed images (batch of 1) spread over `split` (the
    first `count` of a streamed split)."""
    if isinstance(split, RecordSplit):
        stream = split.limit(count).ordered(shape[2])
    else:
        indices = np.linspace(0, len(split) - 1, min(count, len(split))).astype(np.int64)
        stream = tf.data.Dataset.from_tensor_slices(indices).map(split.load_fn(shape[2]))
    for image, _ in stream:
        yield eval_transform(image, shape, config).numpy()[None]
