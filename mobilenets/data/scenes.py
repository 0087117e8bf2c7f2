"""Synthetic detection and segmentation scenes made offline from Fashion-MNIST: items placed at
random sizes and positions on a larger noisy canvas, several per image and never overlapping,
so that each item's box is exact (the tight box of its visible pixels) and so is its pixel mask.
Deterministic by seed; written as a COCO-format dataset (`write_coco`) so they go through the
loader users' own data does.
"""

import json
import pathlib

import numpy as np
from PIL import Image

VISIBLE = 24  # an item's pixels above this (of 255) are the object; Fashion-MNIST's background is 0


def make_scene(items, labels, rng, size=96, max_objects=4, sides=(20, 56), attempts=20):
    """One scene: (uint8 image [size, size, 3], boxes [n, 4] as [ymin, xmin, ymax, xmax] pixel
    edges, classes [n], mask [size, size] of class + 1 per object pixel, 0 elsewhere). Draws up
    to `max_objects` of `items` (28x28 uint8) with their `labels`; n may be 0."""
    canvas = rng.integers(0, 40, (size, size), dtype=np.uint8)
    mask = np.zeros((size, size), np.int32)
    taken = np.zeros((size, size), bool)
    boxes, classes = [], []
    for _ in range(rng.integers(0, max_objects + 1)):
        index = rng.integers(len(items))
        side = int(rng.integers(sides[0], sides[1] + 1))
        item = np.asarray(Image.fromarray(items[index]).resize((side, side), Image.BILINEAR))
        visible = item > VISIBLE
        if not visible.any():
            continue
        for _ in range(attempts):  # a free place, else leave the item out
            top, left = rng.integers(0, size - side + 1, 2)
            region = (slice(top, top + side), slice(left, left + side))
            if not taken[region].any():
                break
        else:
            continue
        taken[region] = True
        canvas[region] = np.where(visible, item, canvas[region])
        mask[region] = np.where(visible, labels[index] + 1, mask[region])
        rows, cols = np.nonzero(visible)
        boxes.append([top + rows.min(), left + cols.min(), top + rows.max() + 1,
                      left + cols.max() + 1])
        classes.append(int(labels[index]))
    image = np.repeat(canvas[..., None], 3, axis=-1)
    return image, np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int32), mask


def write_coco(folder, items, labels, class_names, count, seed, **scene_options):
    """Writes `count` scenes as PNG files and `instances.json` (COCO's format: boxes as [x, y,
    width, height] pixels, category ids from 1) into `folder`; returns the JSON's path."""
    folder = pathlib.Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for number in range(count):
        image, boxes, classes, mask = make_scene(items, labels, rng, **scene_options)
        name = f"{number:06d}.png"
        Image.fromarray(image).save(folder / "images" / name)
        Image.fromarray(mask.astype(np.uint8)).save(folder / "images" / f"{number:06d}.mask.png")
        height, width = image.shape[:2]
        images.append({"id": number + 1, "file_name": name, "width": width, "height": height})
        for (ymin, xmin, ymax, xmax), label in zip(boxes.tolist(), classes.tolist()):
            annotations.append({"id": len(annotations) + 1, "image_id": number + 1,
                                "category_id": label + 1, "iscrowd": 0,
                                "bbox": [xmin, ymin, xmax - xmin, ymax - ymin],
                                "area": (xmax - xmin) * (ymax - ymin)})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
    path = folder / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))
    return path
