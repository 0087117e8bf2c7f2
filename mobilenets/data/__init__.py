"""Datasets: the sources (bundled sample, Fashion-MNIST IDX files, image folders, tfds), their
splits, preprocessing, and the tf.data pipelines the stages feed models with.

`load(config, seed, splits)` returns a `Data` of random-access `Split`s and class names.
"""

import dataclasses
import os

from mobilenets.data import sources
from mobilenets.data.splits import Data

__all__ = ["Data", "SOURCES", "load"]
from mobilenets.errors import UserError

LOADERS = {"sample": sources.load_sample, "fashion_mnist": sources.load_fashion_mnist,
           "folder": sources.load_folder, "tfds": sources.load_tfds}
SOURCES = tuple(LOADERS)


def load(config, seed=0, splits=("train", "eval")):
    """Loads the splits (`"train"`, `"eval"`) of the source a `DataConfig` names; the splits
    not asked for are None (evaluating does not read the training images)."""
    config = dataclasses.replace(config, dir=os.path.expanduser(config.dir),
                                 manual_dir=os.path.expanduser(config.manual_dir))
    data = LOADERS[config.source](config, seed, set(splits))
    limits = {"train": config.train_limit, "eval": config.eval_limit}
    for name in splits:
        split = getattr(data, name).limit(limits[name])
        if len(split) == 0:
            kind = "training" if name == "train" else "evaluation"
            raise UserError(f"data: the {kind} split of {config.source} has no images")
        setattr(data, name, split)
    return data
