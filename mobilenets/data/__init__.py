"""Datasets: the sources (bundled sample, Fashion-MNIST IDX files, image folders, tfds; for
detection, synthetic scenes and COCO-format folders; for segmentation, the scenes' masks and
folders of images and masks), their splits, preprocessing, and the tf.data pipelines the stages
feed models with.

`load(config, seed, splits)` returns a `Data` of random-access `Split`s and class names.
"""

import dataclasses
import functools
import logging
import os

from mobilenets.data import annotated, masks, sources
from mobilenets.data.splits import Data, Split  # noqa: F401 (Split: part of the package API)
from mobilenets.errors import UserError

__all__ = ["Data", "SOURCES", "load"]

log = logging.getLogger("mobilenets")

LOADERS = {"sample": sources.load_sample, "fashion_mnist": sources.load_fashion_mnist,
           "folder": sources.load_folder, "tfds": sources.load_tfds,
           "scenes": annotated.load_scenes, "coco": annotated.load_coco,
           "masks": masks.load_mask_folder}
SOURCES = tuple(LOADERS)
DESCRIBED = {"classes": "classes", "objects": "objects (detection data)",
             "masks": "masks (segmentation data)"}


def load(config, seed=0, splits=("train", "eval"), channels=3, labels="classes"):
    """Loads the splits (`"train"`, `"eval"`) of the source a `DataConfig` names; the splits
    not asked for are None (evaluating does not read the training images). Image files are
    checked by decoding them as a model of `channels` input channels will be fed. With
    `data.holdout`, the validation split is held out of the training one (seeded by
    `data.holdout_seed`, the same whatever the training seed). UserError if the labels are
    not of the kind `labels` ("classes", "objects" or "masks": the task's `Task.labels`).
    """
    config = dataclasses.replace(config, dir=os.path.expanduser(config.dir),
                                 manual_dir=os.path.expanduser(config.manual_dir))
    loader = LOADERS[config.source]
    if config.source in ("scenes", "tfds"):  # scenes: objects or masks; tfds: classes or masks
        loader = functools.partial(loader, masks=labels == "masks")
    data = loader(config, seed, set(splits), channels)
    limits = {"train": config.train_limit, "eval": config.eval_limit}
    for name in splits:
        split = getattr(data, name).limit(limits[name])
        if len(split) == 0:
            kind = "training" if name == "train" else "evaluation"
            raise UserError(f"data: the {kind} split of {config.source} has no images")
        setattr(data, name, split)
        if split.kind != labels:
            raise UserError(f"data: {config.name or config.source} has {DESCRIBED[split.kind]}; "
                            f"the task trains on {DESCRIBED[labels]}")
    if config.holdout and "train" in splits:
        data.train, data.validation = hold_out(data.train, config)
    return data


def hold_out(train, config):
    """(training, validation): `data.holdout` images (a count, or a fraction below 1) of each
    class's share of the training split; of a streamed split, whole record files holding at
    least that many (`RecordSplit.hold_out`)."""
    count = round(config.holdout * len(train)) if config.holdout < 1 else int(config.holdout)
    if count >= len(train):
        raise UserError(f"data.holdout {config.holdout:g} is not smaller than the training "
                        f"split ({len(train)} images)")
    try:
        rest, held = train.hold_out(count / len(train), config.holdout_seed, total=count)
    except ValueError as error:
        raise UserError(f"data.holdout {config.holdout:g}: {error}") from None
    log.info("validating on %d images held out of the %d training images", len(held),
             len(train))
    return rest, held
