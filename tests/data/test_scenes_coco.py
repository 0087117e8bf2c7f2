"""Detection data: the synthetic Fashion-MNIST scenes (exact boxes and masks, by seed) and the
COCO-format reader, with its messages for bad annotation files."""

import json

import numpy as np
import pytest
from PIL import Image

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import coco, scenes
from mobilenets.errors import UserError


@pytest.fixture(scope="module")
def items():
    sample = data_lib.load(DataConfig(source="sample", train_limit=200), splits=("train",),
                           channels=1)
    images, labels = [], []
    for image, label in sample.train.ordered(1).take(200):
        images.append(image.numpy()[..., 0])
        labels.append(int(label))
    return np.array(images), np.array(labels)


def test_scenes_have_exact_boxes_and_masks_and_depend_only_on_the_seed(items):
    images, labels = items
    objects = 0
    for seed in range(10):
        image, boxes, classes, mask = scenes.make_scene(images, labels, np.random.default_rng(seed))
        again = scenes.make_scene(images, labels, np.random.default_rng(seed))
        np.testing.assert_array_equal(image, again[0])
        np.testing.assert_array_equal(boxes, again[1])
        assert image.shape == (96, 96, 3) and mask.shape == (96, 96)
        covered = np.zeros_like(mask, bool)
        for (ymin, xmin, ymax, xmax), label in zip(boxes.astype(int), classes):
            inside = mask[ymin:ymax, xmin:xmax] == label + 1
            # tight: the object's pixels reach every edge of its box
            assert inside[0].any() and inside[-1].any()
            assert inside[:, 0].any() and inside[:, -1].any()
            assert not covered[ymin:ymax, xmin:xmax].any()  # no overlaps
            covered[ymin:ymax, xmin:xmax] = True
            assert (image[ymin:ymax, xmin:xmax, 0][inside] > scenes.VISIBLE).all()
        assert not (mask[~covered] > 0).any()  # every object pixel is in a box
        objects += len(boxes)
    assert objects > 10


def test_coco_round_trip(items, tmp_path):
    images, labels = items
    names = [f"class{i}" for i in range(10)]
    path = scenes.write_coco(tmp_path, images, labels, names, count=6, seed=3)
    annotated, class_names = coco.read(path)
    assert class_names == names and len(annotated) == 6
    rng = np.random.default_rng(3)
    for entry in annotated:
        _, boxes, classes, _ = scenes.make_scene(images, labels, rng)
        np.testing.assert_allclose(entry.boxes, boxes / 96, atol=1e-6)
        np.testing.assert_array_equal(entry.classes, classes)
        assert Image.open(entry.path).size == (96, 96)


def write(tmp_path, images=None, annotations=None, categories=None, files=("a.png",)):
    for name in files:
        Image.new("RGB", (50, 40)).save(tmp_path / name)
    data = {"images": images if images is not None else
            [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}],
            "annotations": annotations if annotations is not None else
            [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 30], "iscrowd": 0}],
            "categories": categories if categories is not None else
            [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_reader_converts_boxes_and_keeps_images_without_objects(tmp_path):
    path = write(tmp_path, images=[{"id": 1, "file_name": "a.png", "width": 50, "height": 40},
                                   {"id": 2, "file_name": "b.png", "width": 50, "height": 40}],
                 annotations=[{"id": 7, "image_id": 1, "category_id": 5, "bbox": [10, 5, 20, 30]},
                              {"id": 8, "image_id": 1, "category_id": 3, "bbox": [0, 0, 5, 5],
                               "iscrowd": 1}],
                 files=("a.png", "b.png"))
    annotated, names = coco.read(path)
    assert names == ["cat", "dog"]
    np.testing.assert_allclose(annotated[0].boxes, [[5 / 40, 10 / 50, 35 / 40, 30 / 50]])
    np.testing.assert_array_equal(annotated[0].classes, [1])  # the crowd box is left out
    assert annotated[1].boxes.shape == (0, 4)


@pytest.mark.parametrize("change, message", [
    (dict(files=()), r"instances.json: image id 1: a.png not found in "),
    (dict(annotations=[{"id": 7, "image_id": 1, "category_id": 3, "bbox": [40, 5, 20, 30]}]),
     r"instances.json: annotation id 7: box \[40, 5, 20, 30\] \(x, y, width, height\) is empty "
     r"or outside its 50x40 image a.png"),
    (dict(annotations=[{"id": 9, "image_id": 1, "category_id": 4, "bbox": [1, 1, 2, 2]}]),
     r"instances.json: annotation id 9: unknown category id 4 \(the categories: 3, 5\)"),
    (dict(annotations=[{"id": 9, "image_id": 2, "category_id": 3, "bbox": [1, 1, 2, 2]}]),
     r"instances.json: annotation id 9: image id 2 is not in 'images'"),
    (dict(categories={}), r"instances.json: no 'categories' list; not a COCO instances file"),
])
def test_bad_annotation_files_name_the_entry(tmp_path, change, message):
    path = write(tmp_path, **change)
    with pytest.raises(UserError, match=message):
        coco.read(path)


def test_not_json_and_missing_file(tmp_path):
    (tmp_path / "bad.json").write_text("{images: ")
    with pytest.raises(UserError, match="bad.json: not a JSON file"):
        coco.read(tmp_path / "bad.json")
    with pytest.raises(UserError, match="annotation file not found: .*none.json"):
        coco.read(tmp_path / "none.json")
