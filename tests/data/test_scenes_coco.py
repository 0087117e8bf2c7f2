"""Detection data: the synthetic Fashion-MNIST scenes (exact boxes and masks, by seed) and the
COCO-format reader, with its messages for bad annotation files."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import box_transforms, coco, scenes
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


def test_box_aware_crop_and_flip_keep_boxes_on_their_objects(items):
    """Each object's pixels carry its instance number in an extra channel that goes through the
    same crop and flip: every kept box holds all of its object's remaining pixels, within the
    image."""
    images, labels = items
    kept_total = 0
    for seed in range(12):
        image, boxes, classes, mask = scenes.make_scene(images, labels,
                                                        np.random.default_rng(seed))
        instances = np.zeros(mask.shape, np.uint8)
        for number, (ymin, xmin, ymax, xmax) in enumerate(boxes.astype(int), 1):
            instances[ymin:ymax, xmin:xmax][mask[ymin:ymax, xmin:xmax] > 0] = number
        stacked = tf.constant(np.dstack([image, instances]))
        numbers = tf.range(1, len(boxes) + 1)
        cropped, kept, kept_numbers = box_transforms.random_crop(
            stacked, tf.constant(boxes / 96), numbers, tf.constant([seed, 0], tf.int64))
        flipped, kept = box_transforms.random_flip(cropped, kept, tf.constant([seed, 1],
                                                                              tf.int64))
        out, kept, kept_numbers = flipped.numpy(), kept.numpy(), kept_numbers.numpy()
        height, width = out.shape[:2]
        assert ((kept >= 0) & (kept <= 1)).all()
        for box, number in zip(kept, kept_numbers):
            rows, cols = np.nonzero(out[..., 3] == number)
            if rows.size:  # the box in pixel edges holds every pixel left of its object
                top, left, bottom, right = box * [height, width, height, width]
                assert top <= rows.min() + 1e-3 and rows.max() + 1 <= bottom + 1e-3
                assert left <= cols.min() + 1e-3 and cols.max() + 1 <= right + 1e-3
        kept_total += len(kept)
    assert kept_total > 10
    empty, no_boxes, no_classes = box_transforms.random_crop(
        tf.zeros((40, 50, 3)), tf.zeros((0, 4)), tf.zeros((0,), tf.int32),
        tf.constant([1, 2], tf.int64))
    assert no_boxes.shape == (0, 4) and no_classes.shape == (0,) and empty.shape[2] == 3


def test_crop_keeps_the_objects_whose_centre_is_inside_clipped_to_the_window():
    boxes = np.array([[0.1, 0.1, 0.3, 0.3],    # centre (0.2, 0.2): outside the window
                      [0.4, 0.4, 0.8, 0.9],    # inside, its right part cut
                      [0.5, 0.5, 0.6, 0.6]])   # inside whole
    kept, classes = box_transforms.crop_boxes(boxes, tf.constant([1, 2, 3]),
                                              tf.constant([0.25, 0.25, 0.75, 0.75]))
    np.testing.assert_array_equal(classes, [2, 3])
    np.testing.assert_allclose(kept, [[0.3, 0.3, 1.0, 1.0], [0.5, 0.5, 0.7, 0.7]], atol=1e-6)
