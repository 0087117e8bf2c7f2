"""Segmentation as a task: its data sources (the scenes' masks, mask folders, PASCAL VOC's
layout) and their checks, masks kept aligned with images, the loss and metric Keras trains with,
scoring, pretrained backbones, and a whole run through the CLI: train, evaluate the .keras and
.tflite files, predict masks."""

import dataclasses
import functools
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets import tasks
from mobilenets.cli import main
from mobilenets.config import DataConfig, TaskConfig
from mobilenets.data import pipeline, scenes
from mobilenets.errors import UserError
from mobilenets.tasks.segmentation import losses
from mobilenets.tasks.segmentation.settings import SegmentationConfig
from tests.tasks.scenes_run import ONE_EPOCH

SCENES = DataConfig(source="scenes", scene_size=64, train_scenes=24, eval_scenes=8)


def test_scenes_give_each_items_pixels_as_its_mask():
    data = data_lib.load(SCENES, labels="masks")
    assert data.class_names[0] == "background" and data.class_names[1] == "t-shirt/top"
    assert len(data.class_names) == 11
    masks, images = data.train.labels, data.train.arrays
    assert masks.shape == (24, 64, 64) and masks.dtype == np.uint8
    assert data.train.kind == "masks"
    assert masks.max() <= 10 and (masks > 0).any()
    # an item's pixels are brighter than the canvas' noise could make alone
    assert (images[..., 0][masks > 0] > scenes.VISIBLE).all()
    detection = data_lib.load(SCENES, labels="objects")  # the same scenes, with objects
    np.testing.assert_array_equal(detection.train.arrays, images)
    for mask, objects in zip(masks, detection.train.labels):
        kept = objects[objects[:, 4] >= 0]
        assert sorted(np.unique(mask[mask > 0]) - 1) == sorted(set(kept[:, 4].astype(int)))


def write_mask_folder(root, split="train", count=4, size=(40, 30), classes=3):
    """`count` images of `size` (width, height), each an RGB picture whose red channel is
    the class of its mask x 60, beside their masks; labels.txt of `classes` names."""
    rng = np.random.default_rng(len(split))
    (root / split / "images").mkdir(parents=True)
    (root / split / "masks").mkdir(parents=True)
    masks = []
    for number in range(count):
        mask = rng.integers(0, classes, (size[1], size[0])).astype(np.uint8)
        mask[0, :3] = 255  # unlabelled pixels
        image = np.stack([np.where(mask == 255, 0, mask) * 60] * 3, axis=-1).astype(np.uint8)
        Image.fromarray(image).save(root / split / "images" / f"{number}.png")
        Image.fromarray(mask).save(root / split / "masks" / f"{number}.png")
        masks.append(mask)
    (root / "labels.txt").write_text("\n".join(f"class{i}" for i in range(classes)) + "\n")
    return masks


def test_mask_folder_source_reads_images_with_their_masks(tmp_path):
    written = write_mask_folder(tmp_path)
    write_mask_folder(tmp_path, "test", count=2)
    data = data_lib.load(DataConfig(source="masks", dir=str(tmp_path)), labels="masks")
    assert data.class_names == ["class0", "class1", "class2"]
    assert len(data.train) == 4 and len(data.eval) == 2 and data.train.kind == "masks"
    for index, (image, mask) in enumerate(data.train.ordered(3)):
        np.testing.assert_array_equal(mask.numpy()[..., 0], written[index])
        assert image.shape == (30, 40, 3)
    held = data_lib.load(DataConfig(source="masks", dir=str(tmp_path), holdout=1),
                         labels="masks")
    assert len(held.train) == 3 and len(held.validation) == 1


def test_a_corrupt_image_is_skipped_with_its_mask(tmp_path, caplog):
    written = write_mask_folder(tmp_path)
    (tmp_path / "train/images/1.png").write_bytes(b"not a png")
    data = data_lib.load(DataConfig(source="masks", dir=str(tmp_path)), splits=("train",),
                         labels="masks")
    assert len(data.train) == 3 and "1.png" in caplog.text
    for (_, mask), expected in zip(data.train.ordered(3), [written[0], *written[2:]]):
        np.testing.assert_array_equal(mask.numpy()[..., 0], expected)


def test_voc_layout_reads_palette_masks_as_class_indices(tmp_path):
    (tmp_path / "ImageSets/Segmentation").mkdir(parents=True)
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    mask = np.zeros((20, 24), np.uint8)
    mask[5:15, 4:12] = 15  # person
    mask[4, 3:13] = 255  # VOC's border
    palette = Image.fromarray(mask, mode="P")
    palette.putpalette([value for i in range(256) for value in (i * 7 % 256, i, 255 - i)])
    palette.save(tmp_path / "SegmentationClass/2007_000001.png")
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(
        tmp_path / "JPEGImages/2007_000001.jpg")
    (tmp_path / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
    data = data_lib.load(DataConfig(source="masks", dir=str(tmp_path)), splits=("train",),
                         labels="masks")
    assert len(data.class_names) == 21 and data.class_names[15] == "person"
    (image, decoded), = data.train.ordered(3)
    np.testing.assert_array_equal(decoded.numpy()[..., 0], mask)  # indices, not colours
    with pytest.raises(UserError, match="val.txt not found; the splits listed there: train"):
        data_lib.load(DataConfig(source="masks", dir=str(tmp_path), eval_split="val"),
                      splits=("eval",), labels="masks")


@functools.cache
def tiny_masks_builder():
    """A tfds dataset with segmentation masks in oxford_iiit_pet's form (an image, a class
    label, a 1-channel `segmentation_mask`), built offline; registered once per process."""
    import tensorflow_datasets as tfds

    class TinyMasks(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(16, 24, 3)),
                "label": tfds.features.ClassLabel(names=["cat", "dog"]),
                "segmentation_mask": tfds.features.Image(shape=(16, 24, 1))}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(4), "test": self._generate_examples(2)}

        def _generate_examples(self, count):
            for i in range(count):
                yield i, {"image": np.full((16, 24, 3), 30 * i, np.uint8), "label": i % 2,
                          "segmentation_mask": tiny_mask(i)}

    return TinyMasks


def tiny_mask(index):
    mask = np.full((16, 24, 1), 2, np.uint8)  # oxford_iiit_pet: 2 is the background
    mask[4:12, index:index + 8] = 1
    return mask


@pytest.mark.parametrize("cache", [True, False])  # in memory, or streamed from the records
def test_tfds_source_gives_the_datasets_masks(tmp_path, cache):
    builder = tiny_masks_builder()(data_dir=str(tmp_path))
    builder.download_and_prepare()
    config = DataConfig(source="tfds", name=builder.name, dir=str(tmp_path), cache=cache,
                        mask_classes=["none", "pet", "background"])
    data = data_lib.load(config, labels="masks")
    assert data.class_names == ["none", "pet", "background"] and len(data.train) == 4
    assert data.train.kind == "masks"
    masks = sorted((mask.numpy().tobytes() for _, mask in data.train.ordered(3)))
    assert masks == sorted(tiny_mask(i).tobytes() for i in range(4))
    examples = tasks.get("segmentation").examples(None, 3)
    images, targets = next(iter(pipeline.train_dataset(data.train, config, (16, 16, 3),
                                                       examples, 2, seed=1)))
    assert images.shape == (2, 16, 16, 3) and targets.shape == (2, 16, 16, 1)
    assert set(np.unique(targets)) <= {1, 2, 255}
    classes = data_lib.load(DataConfig(source="tfds", name=builder.name, dir=str(tmp_path)))
    assert classes.class_names == ["cat", "dog"]  # the same dataset, classified
    with pytest.raises(UserError, match="data.mask_classes: name the classes"):
        data_lib.load(dataclasses.replace(config, mask_classes=[]), labels="masks")


def segmentation_config(tmp_path, data_dir, extra=""):
    path = tmp_path / "run.yaml"
    path.write_text(f"task: {{name: segmentation}}\ndata: {{source: masks, dir: {data_dir}}}\n"
                    "model: {input_shape: [32, 32, 3], alpha: 0.35}\n" + extra)
    return path


@pytest.mark.parametrize("spoil, message", [
    (lambda masks: Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks / "1.png"),
     r"mask \S+/train/masks/1.png is 10x10 pixels, its image \S+/train/images/1.png 40x30"),
    (lambda masks: Image.fromarray(np.full((30, 40), 7, np.uint8)).save(masks / "2.png"),
     r"mask \S+/train/masks/2.png has value\(s\) 7, not classes \(0 to 2\) nor 255"),
    (lambda masks: Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(masks / "0.png"),
     r"mask \S+/train/masks/0.png is a RGB image; a mask is a single-channel PNG"),
    (lambda masks: (masks / "3.png").unlink(),
     r"\S+/train/images/3.png has no mask \(\S+/train/masks/3.png not found\)"),
])
def test_a_bad_mask_stops_the_run_with_exit_2_naming_the_file(tmp_path, capsys, spoil,
                                                              message):
    data_dir = tmp_path / "data"
    write_mask_folder(data_dir)
    write_mask_folder(data_dir, "test", count=2)
    spoil(data_dir / "train/masks")
    config = segmentation_config(tmp_path, data_dir)
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")]) == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("change, message", [
    ({"data": {"source": "coco"}}, "data.source coco is not a source of segmentation data"),
    ({"data": {"source": "scenes", "mixup_alpha": 0.2}},
     "data.mixup_alpha: not available for segmentation"),
    ({"data": {"source": "scenes"}, "export": {"modes": ["float16"]}},
     "export.modes: segmentation exports float32 and int8 files, not float16"),
    ({"data": {"source": "scenes"},
      "task": {"name": "segmentation", "segmentation": {"output_stride": 4}}},
     r"task.segmentation.output_stride: 4 \(int\) is not one of 8, 16"),
    ({"data": {"source": "scenes"},
      "task": {"name": "segmentation", "segmentation": {"head": "lraspp", "output_stride": 8}}},
     "task.segmentation.output_stride: lraspp works at output stride 16"),
    ({"data": {"source": "scenes"}, "task": {"name": "segmentation", "head": "lraspp",
                                             "aspp": True}},  # the keys' old place: moved
     "task.segmentation.aspp: ASPP is an option of deeplab_v3, not lraspp"),
])
def test_config_refuses_what_segmentation_cannot_do(change, message):
    with pytest.raises(UserError, match=message):
        config_lib.from_dict({"task": {"name": "segmentation"}, **change})


def test_old_task_keys_are_read_in_the_tasks_section_with_a_warning(caplog):
    config = config_lib.from_dict({"task": {"name": "segmentation", "head": "lraspp"},
                                   "data": {"source": "scenes"}})
    assert config.task.segmentation.head == "lraspp"
    assert "task.head -> task.segmentation.head" in caplog.text
    assert tasks.get(config.task).config.head == "lraspp"


def test_a_classification_source_is_refused_for_segmentation():
    with pytest.raises(UserError, match="sample has classes; the task trains on masks"):
        data_lib.load(DataConfig(source="sample"), labels="masks")


@pytest.mark.parametrize("augment", ["flip_crop", "flip", "none"])
def test_training_examples_keep_masks_on_their_pixels(augment):
    """An image whose left half is dark and right half bright, its mask the halves' classes
    (1 and 2, with a lopsided edge): after every seed's augmentation the image pixel under
    each labelled mask pixel has that class's brightness; a flip of one and not the other
    would put them a mirror image apart."""
    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 20:] = 200
    mask = np.where(image[..., :1] > 0, 2, 1).astype(np.uint8)
    examples = tasks.get("segmentation").examples(None, 3)
    config = DataConfig(augment=augment)
    flipped = 0
    for seed in range(12):
        out, label = examples.augment(tf.constant(image), tf.constant(mask),
                                      tf.constant([seed, 3], tf.int64), (32, 32, 3), config, None)
        out, target = out.numpy()[..., 0], examples.target(label).numpy()[..., 0]
        assert out.shape == target.shape == (32, 32)
        labelled = target != 255
        agree = ((out[labelled] > 100) == (target[labelled] == 2)).mean()
        assert agree > 0.95, (seed, agree)
        flipped += target[16, 0] == 2  # the bright side on the left
    assert (flipped > 0) == (augment != "none")


def test_evaluation_resizes_the_mask_with_the_image():
    split = data_lib.Split(labels=np.kron(np.array([[[0, 1], [2, 255]]], np.uint8),
                                          np.ones((1, 20, 30), np.uint8)),
                           arrays=np.zeros((1, 40, 60, 3), np.uint8))
    examples = tasks.get("segmentation").examples(None, 3)
    (_, truths), = pipeline.eval_dataset(split, DataConfig(), (8, 12, 3), examples, 4,
                                         truth=True)
    expected = np.kron(np.array([[0, 1], [2, 255]]), np.ones((4, 6)))
    np.testing.assert_array_equal(truths.numpy()[0], expected)
    assert truths.dtype == tf.uint8
    (_, targets), = pipeline.client_dataset(split, (8, 12, 3), examples, 4)
    np.testing.assert_array_equal(targets.numpy()[0], expected)


def test_keras_loss_is_the_batchs_mean_over_labelled_pixels():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    masks = rng.integers(0, 6, (3, 4, 5, 1))
    masks[0, :2] = 255
    masks[2] = 255  # an image with no labelled pixel
    per_image = losses.keras_loss()(tf.constant(masks), tf.constant(logits)).numpy()
    assert per_image.shape == (3,) and per_image[2] == 0
    expected = float(losses.pixel_cross_entropy(masks, logits))
    assert per_image.mean() == pytest.approx(expected, rel=1e-6)
    accuracy = losses.pixel_accuracy(tf.constant(masks), tf.constant(logits)).numpy()
    labelled = masks[1, ..., 0] != 255
    right = (logits[1].argmax(-1) == masks[1, ..., 0])[labelled].mean()
    assert accuracy[1] == pytest.approx(right) and accuracy[2] == 0


def test_scores_agreement_and_model_checks():
    task = tasks.get("segmentation")
    truths = np.array([[[0, 0, 1, 255]], [[1, 1, 2, 2]]], np.uint8)
    predicted = np.array([[[0, 1, 1, 2]], [[1, 1, 2, 0]]], np.uint8)
    scores = task.scores(predicted, truths, ["a", "b", "c"])
    # a: 1 right of 1 + 1 + 1 (a pixel of c predicted a); b: 3 of 4; c: 1 of 2
    assert scores["per_class_iou"] == pytest.approx({"a": 1 / 3, "b": 3 / 4, "c": 1 / 2})
    assert scores["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(5 / 7) and scores["images"] == 2
    assert task.agreement(predicted, truths) == pytest.approx(5 / 8)
    probabilities = np.eye(3)[predicted]
    np.testing.assert_array_equal(task.file_outputs(probabilities), predicted)
    assert task.check_model((None, 32, 32, 3), (None, 32, 32, 3), ["a", "b", "c"]) is None
    assert "segments 4 classes but the data has 3" in task.check_model(
        (None, 32, 32, 3), (None, 32, 32, 4), ["a", "b", "c"])
    assert "not per-pixel class scores" in task.check_model((None, 32, 32, 3), (None, 3),
                                                            ["a", "b", "c"])


@pytest.mark.parametrize("head, name, options", [("deeplab_v3", "mobilenet_v2", {"alpha": 0.35}),
                                                 ("lraspp", "mobilenet_v3_small", {})])
def test_imagenet_weights_start_the_backbone(tmp_path, head, name, options):
    """`model.weights` (keras.applications' .h5 without classifier): the backbone's weights
    are keras.applications' in layer order (DeepLab leaves out MobileNetV2's last 1x1 conv,
    which it does not use); the head stays as built."""
    from mobilenets import experiment
    from mobilenets.config import ModelConfig
    from tests.models.test_pretrained import reference, save_legacy_h5

    served = reference(name, options, include_top=False)
    path = tmp_path / "no_top.h5"
    save_legacy_h5(served, path)
    task = tasks.get(TaskConfig(name="segmentation",
                                segmentation=SegmentationConfig(head=head)))
    config = ModelConfig(name=name, input_shape=[64, 64, 3], weights=str(path), **options)
    tf.keras.utils.set_random_seed(2)
    fresh = experiment.build(task, dataclasses.replace(config, weights=None), 5)
    tf.keras.utils.set_random_seed(2)
    model = experiment.build(task, config, 5)
    part = task.pretrained_part(model).weights
    assert len(part) > 100
    for ours, theirs in zip(part, served.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    for ours, built in zip(model.get_layer("logits").weights + model.weights[len(part):],
                           fresh.get_layer("logits").weights + fresh.weights[len(part):]):
        np.testing.assert_array_equal(ours.numpy(), built.numpy())


QUICK = """
task:
  name: segmentation
  head: lraspp
model:
  name: mobilenet_v3_small
  alpha: 0.5
  input_shape: [64, 64, 3]
data:
  source: scenes
  scene_size: 64
  train_scenes: 64
  eval_scenes: 12
  augment: flip_crop
""" + ONE_EPOCH


@pytest.mark.slow
def test_qat_trains_a_segmenter_into_an_int8_file_that_segments_as_the_qat_model(tmp_path,
                                                                                capsys):
    """QAT for segmentation (from scratch here, 4 steps): the int8 file (the bilinear resize
    int8, the softmax float) runs in one XNNPACK partition, and `evaluate` on model_qat.h5
    scores what the export reported for it."""
    config = tmp_path / "segmentation.yaml"
    config.write_text(QUICK + "qat:\n  enabled: true\n")
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    report = json.loads((workdir / "export/report.json").read_text())
    assert report["keras_model"] == "model_qat.h5"
    assert list(report["files"]) == ["model_qat_int8.tflite"]
    entry = report["files"]["model_qat_int8.tflite"]
    assert entry["partitions"] == 1 and entry["ops_outside_xnnpack"] == []
    assert entry["input"]["dtype"] == "uint8" and entry["output"]["shape"] == [1, 64, 64, 11]
    assert entry["agreement"] > 0.95
    capsys.readouterr()
    assert main(["evaluate", "--config", str(config), "--model",
                 str(workdir / "model_qat.h5")]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["miou"] == pytest.approx(report["float"]["miou"])


@pytest.mark.slow
def test_segmentation_trains_evaluates_exports_predicts_and_resumes_from_the_cli(tmp_path,
                                                                                 capsys):
    config = tmp_path / "segmentation.yaml"
    config.write_text(QUICK)
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["images"] == 12 and metrics["pixels"] == 12 * 64 * 64 and metrics["steps"] == 4
    assert set(metrics["per_class_iou"]) == {"background",
                                             *data_lib.sources.FASHION_MNIST_CLASSES}
    assert Image.open(workdir / "eval.masks.png").size[0] > 100
    report = json.loads((workdir / "export/report.json").read_text())
    assert list(report["files"]) == ["model_float32.tflite", "model_int8.tflite"]
    for entry in report["files"].values():
        assert entry["partitions"] == 1 and entry["ops_outside_xnnpack"] == []
        assert entry["output"]["shape"] == [1, 64, 64, 11]
    assert report["files"]["model_float32.tflite"]["agreement"] > 0.999
    assert report["files"]["model_int8.tflite"]["input"]["dtype"] == "uint8"
    for model in ("model.keras", "export/model_int8.tflite"):
        capsys.readouterr()
        assert main(["evaluate", "--config", str(config), "--model",
                     str(workdir / model)]) == 0
        scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert scored["images"] == 12
    assert scored["miou"] == pytest.approx(report["files"]["model_int8.tflite"]["miou"])
    assert (workdir / "export/model_int8.tflite.masks.png").is_file()
    capsys.readouterr()
    assert main(["export", "--config", str(config), "--model", str(workdir / "model.keras"),
                 "--modes", "float32", "--workdir", str(tmp_path / "again")]) == 0
    exported = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert exported["model_float32.tflite"]["miou"] == pytest.approx(
        report["files"]["model_float32.tflite"]["miou"])
    scene = data_lib.load(dataclasses.replace(SCENES, train_scenes=1), splits=("eval",),
                          labels="masks").eval.arrays[0]
    Image.fromarray(scene).resize((80, 70)).save(tmp_path / "scene.png")
    for model in ("model.keras", "export/model_float32.tflite"):
        capsys.readouterr()
        assert main(["predict", str(workdir / model), str(tmp_path / "scene.png"), "--json",
                     "--masks", str(tmp_path / model.replace("/", "_"))]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        assert sum(c["fraction"] for c in result["classes"]) <= 1.0
        assert result["classes"][0]["label"] in metrics["per_class_iou"]
        mask = np.asarray(Image.open(result["mask"]))
        assert mask.shape == (70, 80) and mask.max() <= 10
    assert main(["train", "--config", str(config), "--workdir", str(workdir), "--set",
                 "train.epochs=2", "export.modes=[]"]) == 0  # resumed: one more epoch
    assert len((workdir / "history.csv").read_text().splitlines()) == 3
