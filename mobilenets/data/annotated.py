"""Sources of images with objects (detection): synthetic scenes made here from the bundled
Fashion-MNIST sample, and COCO-format folders (what labelling tools export). Each gives a `Data`
whose splits' labels are the images' objects (`splits.annotations`), or, for the scenes made for
segmentation, their masks."""

import logging
import pathlib

import numpy as np

from mobilenets.data import coco, scenes
from mobilenets.data.checks import checked_split
from mobilenets.data.sources import FASHION_MNIST_CLASSES, SAMPLE_DIR, _idx_split
from mobilenets.data.splits import Data, Split, annotations
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

# The scenes' own seeds (not train.seed): every run trains and evaluates on the same scenes.
SCENE_SEEDS = {"train": 1, "eval": 2}


def load_scenes(config, seed, wanted, channels, masks=False):
    """`data.train_scenes` / `data.eval_scenes` scenes of `data.scene_size` pixels, made from
    the bundled sample's training and test items (`data.scenes`): a test scene never shows a
    training item. Labels: the objects, or with `masks` each scene's mask (0: background,
    class i + 1: an item of Fashion-MNIST class i)."""
    del seed, channels  # fixed scenes; 3-channel images
    made = {}
    for name, prefix, count in (("train", "train", config.train_scenes),
                                ("eval", "t10k", config.eval_scenes)):
        if name not in wanted:
            continue
        items = _idx_split(SAMPLE_DIR, prefix)
        rng = np.random.default_rng(SCENE_SEEDS[name])
        size = config.scene_size
        sides = (max(8, size * 5 // 24), max(9, size * 7 // 12))  # 20 to 56 px at 96
        images, boxes, classes, pixel_masks = [], [], [], []
        for _ in range(count):
            image, pixel_boxes, labels, mask = scenes.make_scene(
                items.arrays[..., 0], items.labels, rng, size=size, sides=sides)
            images.append(image)
            boxes.append(pixel_boxes / size)
            classes.append(labels)
            pixel_masks.append(mask.astype(np.uint8))
        labels = np.stack(pixel_masks) if masks else annotations(boxes, classes)
        made[name] = Split(labels=labels, arrays=np.stack(images))
        log.info("made %d %s scenes of %dx%d pixels with %d objects", count, name, size, size,
                 sum(map(len, classes)))
    names = ["background", *FASHION_MNIST_CLASSES] if masks else FASHION_MNIST_CLASSES
    return Data(made.get("train"), made.get("eval"), names)


def load_coco(config, seed, wanted, channels):
    """The COCO-format annotation files `data.train_split` and `data.eval_split` under
    `data.dir` (a JSON file, or a folder holding one), and their images."""
    del seed
    root = pathlib.Path(config.dir)
    if not config.dir or not root.is_dir():
        raise UserError(f"data.dir: folder {config.dir!r} not found (COCO-format annotations "
                        "and images)")
    loaded, names = {}, None
    for name, split in (("train", config.train_split), ("eval", config.eval_split)):
        if name not in wanted:
            continue
        json_path = _annotation_file(root, split, f"data.{name}_split")
        images = root / json_path.stem.removeprefix("instances_")  # COCO: train2017/
        annotated, class_names = coco.read(json_path, images if images.is_dir() else None)
        if names is not None and class_names != names:
            raise UserError(f"{json_path}: its categories ({', '.join(class_names[:5])}, ...) "
                            f"are not the training file's ({', '.join(names[:5])}, ...)")
        names = class_names
        if not annotated:
            raise UserError(f"{json_path}: no images")
        labels = annotations([a.boxes for a in annotated], [a.classes for a in annotated])
        loaded[name] = checked_split(json_path.parent,
                                     np.array([str(a.path) for a in annotated], dtype=object),
                                     labels, config, channels)
        log.info("%s: %d images, %d objects, %d categories", json_path, len(loaded[name]),
                 int((loaded[name].labels[..., 4] >= 0).sum()), len(class_names))
    return Data(loaded.get("train"), loaded.get("eval"), names)


def _annotation_file(root, split, key):
    """The JSON file a split names: a file, or the one .json file of a folder."""
    path = root / split
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) == 1:
            return found[0]
        raise UserError(f"{key}: {path} holds {len(found)} JSON files; name the annotation "
                        "file itself (e.g. annotations/instances_train2017.json)")
    raise UserError(f"{key}: {path} not found (a COCO-format JSON file, or a folder holding "
                    "one, relative to data.dir)")
