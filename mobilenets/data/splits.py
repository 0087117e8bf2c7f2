"""Random-access image splits: decoded arrays or encoded bytes in memory, file paths, or record
files streamed from disk (a tfds split too large for memory)."""

import dataclasses

import numpy as np
import tensorflow as tf

from mobilenets.data.decode import decode
from mobilenets.data.transforms import convert_channels


@dataclasses.dataclass
class Split:
    """Images addressable by index: exactly one of `arrays`, `encoded` or `paths` is set.

    `labels` holds each image's label (`kind` tells which): a class index (int); for
    detection its objects, float32 [N, objects, 5] rows of [ymin, xmin, ymax, xmax] (fractions
    of the image) and the class index, padded to the most objects of an image with rows of
    class -1 (`annotations`); for segmentation its mask of class indices (255: unlabelled),
    uint8 [N, H, W] for images held as `arrays`, else an object array of each mask's
    single-channel PNG bytes."""

    labels: np.ndarray
    arrays: np.ndarray | None = None  # uint8 (N, H, W, C), all one size
    encoded: np.ndarray | None = None  # object array of encoded image bytes
    # object array of file paths (str), and the encoded bytes (bytes) of the few images that
    # had to be converted to a format TensorFlow decodes (data/decode.py)
    paths: np.ndarray | None = None

    def __len__(self):
        return len(self.labels)

    @property
    def kind(self):
        """What the labels are: "classes", "objects" (detection) or "masks" (segmentation)."""
        if self.labels.dtype == object or self.labels.dtype == np.uint8 and self.labels.ndim == 3:
            return "masks"
        return "objects" if self.labels.ndim == 3 else "classes"

    def limit(self, count):
        """The first `count` images (all if 0)."""
        if not count or count >= len(self):
            return self
        return Split(*(None if a is None else a[:count] for a in (
            self.labels, self.arrays, self.encoded, self.paths)))

    def hold_out(self, fraction, seed, total=None):
        """(rest, held): `fraction` of each class's images held out, seeded, so that both parts
        keep the classes' proportions: each class's share rounded, at least 1, or, given a
        `total`, shares rounded so that they add up to it exactly (largest remainders).
        ValueError if a class would keep no training image. Images of several objects or
        classes (detection, segmentation) are held out at random, `total` of them (or the
        rounded fraction)."""
        rng = np.random.default_rng(seed)
        if self.kind != "classes":
            count = total if total is not None else max(1, round(len(self) * fraction))
            held = np.zeros(len(self), bool)
            held[rng.choice(len(self), count, replace=False)] = True
            return self._select(~held), self._select(held)
        classes = np.unique(self.labels)
        members = [np.flatnonzero(self.labels == label) for label in classes]
        quotas = np.array([len(m) * fraction for m in members])
        if total is None:
            counts = np.maximum(1, np.round(quotas)).astype(int)
        else:
            counts = np.floor(quotas).astype(int)
            remainders = np.argsort(-(quotas - counts), kind="stable")
            counts[remainders[:total - counts.sum()]] += 1
        held = np.zeros(len(self), bool)
        for label, group, count in zip(classes, members, counts):
            if count >= len(group):
                raise ValueError(f"leaves no training image in class {label}")
            held[rng.choice(group, count, replace=False)] = True
        return self._select(~held), self._select(held)

    def _select(self, mask):
        return Split(*(None if a is None else a[mask] for a in (
            self.labels, self.arrays, self.encoded, self.paths)))

    def load_fn(self, channels, encoded=False):
        """A tf function index -> (uint8 image H x W x channels, label: int32 class index, the
        float32 objects of an image, or its uint8 mask H x W x 1). With `encoded`, an image held
        encoded (in memory or in a file) comes as its bytes, for a transform that decodes only
        what it keeps (`transforms.window`)."""
        label_of = self._label_fn()
        if self.arrays is not None:
            arrays = tf.constant(self.arrays)

            def load(index):
                return convert_channels(tf.gather(arrays, index), channels), label_of(index)
        else:
            items = self.encoded if self.encoded is not None else self.paths
            source = tf.constant([i if isinstance(i, bytes) else i.encode() for i in items])
            paths = [isinstance(i, str) for i in items]
            is_path = tf.constant(paths, tf.bool)

            def read(index):
                if not any(paths):  # all in memory
                    return source[index]
                return tf.cond(is_path[index], lambda: tf.io.read_file(source[index]),
                               lambda: source[index])

            def load(index):
                data = read(index)
                return (data if encoded else decode(data, channels)), label_of(index)
        return load

    def _label_fn(self):
        """index -> the label as `load_fn` gives it."""
        if self.labels.dtype == object:  # masks as PNG bytes
            masks = tf.constant(list(self.labels))
            return lambda index: tf.io.decode_png(masks[index], channels=1)
        if self.kind == "masks":
            masks = tf.constant(self.labels)
            return lambda index: masks[index][..., None]
        integer = np.issubdtype(self.labels.dtype, np.integer)
        labels = tf.constant(self.labels.astype(np.int32 if integer else np.float32))
        return lambda index: labels[index]

    def ordered(self, channels, encoded=False):
        """The images in order: a dataset of (uint8 image, or its bytes with `encoded`;
        label)."""
        return tf.data.Dataset.range(len(self)).map(self.load_fn(channels, encoded),
                                                    num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_items(self, seed, epoch):
        """One epoch in a seeded order, as items for `item_loader` (here: indices)."""
        order = tf.random.experimental.stateless_shuffle(tf.range(len(self), dtype=tf.int64),
                                                         seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    def item_loader(self, channels, encoded=False):
        return self.load_fn(channels, encoded)


@dataclasses.dataclass
class RecordSplit:
    """A tfds split too large for memory, streamed from its record files.

    An epoch reads the files in a seeded order, interleaved, through a seeded shuffle buffer,
    so the order is still a function of (seed, epoch); a resumed run skips records (without
    decoding them) up to where it stopped.
    """

    files: list  # record files, in shard order
    count: int  # images used per epoch
    parse: object  # serialized example -> (encoded image, label)
    shuffle_buffer: int = 10000
    kind: str = "classes"  # what `parse` gives as label: as `Split.kind`
    lengths: list = None  # images in each file (tfds' shard lengths), for hold_out

    def __len__(self):
        return self.count

    def hold_out(self, fraction, seed, total=None):
        """(rest, held): whole files held out, chosen in a seeded order until they hold at
        least `total` images (or the rounded `fraction`). A stream is read file by file, so its
        held-out part is made of files; tfds writes a split's examples to its files in a
        shuffled order, so each file is a sample of the whole. ValueError if the files'
        lengths are unknown or no file would be left to train on."""
        if not self.lengths:
            raise ValueError("the record files' image counts are unknown")
        wanted = total if total is not None else max(1, round(self.count * fraction))
        held, count = [], 0
        for index in np.random.default_rng(seed).permutation(len(self.files)):
            if count >= wanted:
                break
            held.append(int(index))
            count += self.lengths[index]
        rest = [i for i in range(len(self.files)) if i not in held]
        if not rest:
            raise ValueError(f"a stream is held out by whole files, and {wanted} images take "
                             f"all {len(self.files)} of its files")

        def part(indices, limit):
            indices = sorted(indices)
            return dataclasses.replace(self, files=[self.files[i] for i in indices],
                                       lengths=[self.lengths[i] for i in indices],
                                       count=min(limit, sum(self.lengths[i] for i in indices)))
        return part(rest, self.count), part(held, count)  # the rest within data.train_limit

    def limit(self, count):
        if not count or count >= self.count:
            return self
        return dataclasses.replace(self, count=count)

    def _records(self, files):
        return tf.data.Dataset.from_tensor_slices(files).interleave(
            tf.data.TFRecordDataset, cycle_length=min(16, len(self.files)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def ordered(self, channels, encoded=False):
        load = self.item_loader(channels, encoded)
        return tf.data.TFRecordDataset(self.files).take(self.count).map(
            lambda serialized: load(self.parse(serialized)),
            num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_items(self, seed, epoch):
        files = tf.random.experimental.stateless_shuffle(tf.constant(self.files),
                                                         seed=tf.stack([seed, epoch]))
        return self._records(files).shuffle(self.shuffle_buffer, seed=seed).take(self.count).map(
            self.parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def item_loader(self, channels, encoded=False):
        if encoded:
            return lambda item: item
        return lambda item: (decode(item[0], channels), item[1])


@dataclasses.dataclass
class Data:
    """The splits of a source (None for a split not loaded) and its class names. `validation`
    is held out of the training split (`data.holdout`); without it, training validates on
    `eval`."""

    train: Split | RecordSplit | None
    eval: Split | RecordSplit | None
    class_names: list
    validation: Split | None = None

    @property
    def validating(self):
        """The split training validates on (and picks the best model by)."""
        return self.eval if self.validation is None else self.validation


def annotations(boxes_per_image, classes_per_image):
    """float32 [N, most objects (at least 1), 5]: each image's boxes ([k, 4] fractions) and
    classes ([k]) as rows of [ymin, xmin, ymax, xmax, class], padded with rows of -1 (the
    `labels` of a detection `Split`)."""
    most = max([1, *(len(c) for c in classes_per_image)])
    rows = np.full((len(classes_per_image), most, 5), -1.0, np.float32)
    for index, (boxes, classes) in enumerate(zip(boxes_per_image, classes_per_image,
                                                 strict=True)):
        rows[index, :len(classes), :4] = np.reshape(boxes, (-1, 4))
        rows[index, :len(classes), 4] = classes
    return rows
