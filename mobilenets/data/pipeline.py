"""tf.data pipelines: the endless, resumable training stream, the evaluation split in order,
and calibration images for int8 conversion.

The training stream is a function of (seed, position): each epoch is a seeded permutation of
the indices and each image's augmentation is seeded by its position in the stream, so a resumed
run sees exactly the images the interrupted one would have, starting from any step, without
decoding the skipped ones.
"""

import dataclasses
import re
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from mobilenets.data import augment
from mobilenets.data.splits import RecordSplit
from mobilenets.data.transforms import client_transform, eval_transform, train_transform
from mobilenets.errors import UserError

# Folded into a batch's seed (with its pipeline's index): the images' seeds are
# [seed, position], a batch's [seed, step] folded with this, so the two never coincide.
MIX_STREAM = 1000


@dataclasses.dataclass(frozen=True)
class Examples:
    """How a task turns a split's (uint8 image, label) into what a model sees (the task's
    `examples`). A label is a class index for classification, an image's padded objects for
    detection, its mask for segmentation.

    - `augment(image, label, seed, shape, config, ops)` -> (float image of `shape`, label):
      training's augmentation (a box- or mask-aware one moves the label with the pixels);
    - `evaluation(image, shape, config)` -> the float image validation and scores see;
    - `target(label)`: what the model trains against (its loss's y_true);
    - `truth(label)`: what the task's scores compare predictions with;
    - `label_at_input(label, shape)`, if set: the label of an image resized to the input, as
      evaluation and Android's clients resize the whole image (segmentation's masks);
      before `target` and `truth` in validation, scores and export;
    - `encoded`: `augment` and `evaluation` also take an image as its encoded bytes (a scalar
      string) and decode only what they keep (`transforms.window`).
    """

    target: Callable
    truth: Callable
    augment: Callable
    evaluation: Callable
    label_at_input: Callable | None = None
    encoded: bool = False

    def evaluated(self, label, shape, truth):
        """An evaluation image's label as `target` (or with `truth`, as `truth`) gives it."""
        if self.label_at_input is not None:
            label = self.label_at_input(label, shape)
        return (self.truth if truth else self.target)(label)


def resized_whole(image, shape, config):
    """Evaluation's preprocessing as Android's clients feed a model: the whole image resized
    to the input (`data.crop_fraction` and `data.small_images` do not apply). Detection's and
    segmentation's `Examples.evaluation`."""
    del config
    return client_transform(image, shape)


def classifying(target):
    """The `Examples` of image classification: `transforms`' training and evaluation
    preprocessing of the image alone, `target` (label -> one-hot, say) for both target and
    truth."""
    def augment(image, label, seed, shape, config, ops):
        return train_transform(image, seed, shape, config, ops), label

    return Examples(target=target, truth=target, augment=augment, evaluation=eval_transform,
                    encoded=True)


class Skipped:
    """Counts the training examples a stream skips (`data.corrupt_images: skip`): images that
    fail to decode although they passed the start-up check (changed on disk since). Each
    example made carries its stream position, so the positions missing up to the last one made
    were skipped. One counter serves the successive streams of a run (`start` each)."""

    def __init__(self):
        self.made = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.last = tf.Variable(-1, dtype=tf.int64, trainable=False)
        self.first, self.earlier = 0, 0

    def start(self, position):
        """A new stream from `position`: what the previous one skipped is kept."""
        self.earlier = self.count()
        self.first = position
        self.made.assign(0)
        self.last.assign(position - 1)

    def note(self, position, image, target):
        with tf.control_dependencies([self.made.assign_add(1), self.last.assign(position)]):
            return tf.identity(image), target

    def count(self):
        return self.earlier + int(self.last.numpy()) + 1 - self.first - int(self.made.numpy())


def train_dataset(split, config, shape, examples, batch_size, seed, start_step=0,
                  shard=(1, 0), replica_batch=None, skipped=None):
    """The endless training stream in batches of `batch_size`, starting at batch `start_step`:
    (image, target) as the task's `examples` make them.

    `shard=(count, index)` keeps every count-th image of the stream (one input pipeline of
    several), batched in `replica_batch` images (default batch_size / count). Examples whose
    image fails to decode are skipped with `data.corrupt_images: skip`, counted by `skipped`
    (a `Skipped`) if given.
    """
    start = start_step * batch_size
    stream = training_examples(split, config, shape, examples, seed, start, shard,
                               positions=True)
    if config.corrupt_images == "skip":
        stream = stream.ignore_errors()
    if skipped is not None and shard[0] == 1:
        skipped.start(start)
        stream = stream.map(skipped.note)
    else:
        stream = stream.map(lambda position, image, target: (image, target))
    batches = stream.batch(replica_batch or batch_size // shard[0], drop_remainder=True)
    if augment.enabled(config):  # each pipeline's batch at a global step: one seed
        mix = augment.BatchMixer(config)

        def mixed(step, batch):
            batch_seed = tf.random.experimental.stateless_fold_in(
                tf.stack([tf.cast(seed, tf.int64), step]), MIX_STREAM + shard[1])
            return mix(*batch, batch_seed)

        batches = tf.data.Dataset.zip(tf.data.Dataset.range(start_step, 2**62), batches).map(
            mixed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def training_examples(split, config, shape, examples, seed, start=0, shard=(1, 0),
                      positions=False):
    """The endless stream of training (image, target) pairs (with `positions`: (position in
    the stream, image, target)) from stream position `start`, every `shard[0]`-th of them from
    `shard[1]`, unbatched, errors not skipped."""
    first_epoch, offset = divmod(start, len(split))
    load = split.item_loader(shape[2], examples.encoded)
    items = tf.data.Dataset.range(first_epoch, 2**62).flat_map(
        lambda epoch: split.epoch_items(seed, epoch)).skip(offset)
    stream = tf.data.Dataset.zip(tf.data.Dataset.range(start, 2**62), items)
    if shard[0] > 1:
        stream = stream.shard(*shard)

    ops = augment.rand_augment_ops(config.randaugment_magnitude) if config.randaugment_ops \
        else None

    def element(position, item):
        image, label = load(item)
        image, label = examples.augment(image, label, tf.stack([tf.cast(seed, tf.int64),
                                                                position]), shape, config, ops)
        return (position, image, examples.target(label)) if positions else (
            image, examples.target(label))

    return stream.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def check_training_examples(split, config, shape, examples, seed, count=16):
    """Makes the first `count` training examples; UserError with the first failure's message
    if none of them can be made. Skipping unreadable images (`data.corrupt_images: skip`)
    would otherwise skip every image of a stream that cannot make any, silently, forever."""
    failures = []
    iterator = iter(training_examples(split, config, shape, examples, seed).take(count))
    for _ in range(count):
        try:
            next(iterator)
            return
        except StopIteration:
            return
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
            # the first line, without TensorFlow's {{function_node ...}} prefix
            failures.append(re.sub(r"^\{\{.*?\}\}\s*", "", error.message.splitlines()[0]))
    raise UserError(f"data: the first {count} training examples all fail, so training cannot "
                    f"start: {failures[0]}")


def eval_dataset(split, config, shape, examples, batch_size, truth=False):
    """The evaluation split in order, batched (the last batch may be smaller): (image, target)
    as the task's `examples` make them for validation, or (image, truth) for its scores."""
    def element(image, label):
        return (examples.evaluation(image, shape, config),
                examples.evaluated(label, shape, truth))

    stream = split.ordered(shape[2], examples.encoded).map(
        element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if config.corrupt_images == "skip":
        stream = stream.ignore_errors(log_warning=True)
    return stream.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def client_dataset(split, shape, examples, batch_size):
    """The evaluation split as Android's clients feed a model (`transforms.client_transform`:
    the whole image resized to the input, no crop or padding), batched, with the truth the
    task's scores compare with. What exported files are verified on."""
    def element(image, label):
        return client_transform(image, shape), examples.evaluated(label, shape, truth=True)

    return split.ordered(shape[2]).map(element, num_parallel_calls=tf.data.AUTOTUNE,
                                       deterministic=True).batch(batch_size).prefetch(
                                           tf.data.AUTOTUNE)


def calibration_images(split, shape, count):
    """Yields `count` images (batch of 1) spread over `split` (the first `count` of a streamed
    split), preprocessed as the clients of the exported file will (`client_transform`)."""
    if isinstance(split, RecordSplit):
        stream = split.limit(count).ordered(shape[2])
    else:
        indices = np.linspace(0, len(split) - 1, min(count, len(split))).astype(np.int64)
        stream = tf.data.Dataset.from_tensor_slices(indices).map(split.load_fn(shape[2]))
    for image, _ in stream:
        yield client_transform(image, shape).numpy()[None]


def representative(split, shape, count):
    """The TFLite converter's calibration callable (also QAT's range calibration): `count`
    images of `split` as `calibration_images` gives them, each a list of one float32 batch."""
    def generate():
        for image in calibration_images(split, shape, count):
            yield [image.astype(np.float32)]
    return generate
