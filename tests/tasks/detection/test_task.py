"""Detection as a task: its data sources (scenes, COCO folders), the training examples (box-aware
augmentation, anchor targets), the per-output losses, scoring, and a whole run through the CLI:
train, evaluate the .keras and .tflite files, export."""

import dataclasses
import functools
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets import tasks
from mobilenets.cli import main
from mobilenets.config import DataConfig
from mobilenets.data import box_transforms, scenes
from mobilenets.errors import UserError
from mobilenets.tasks.detection import losses, ssdlite
from mobilenets.training.callbacks import Checkpointer
from tests.tasks.scenes_run import ONE_EPOCH

SCENES = DataConfig(source="scenes", scene_size=64, train_scenes=40, eval_scenes=12)


def test_scenes_source_gives_padded_objects_inside_the_image_the_same_every_time():
    first = data_lib.load(SCENES, labels="objects")
    second = data_lib.load(SCENES, labels="objects")
    assert first.train.arrays.shape == (40, 64, 64, 3) and first.eval.arrays.shape[0] == 12
    objects = first.train.labels
    assert objects.ndim == 3 and objects.shape[2] == 5
    real = objects[..., 4] >= 0
    assert 40 <= real.sum() <= 160  # 0 to 4 objects a scene
    boxes = objects[real][:, :4]
    assert ((boxes >= 0) & (boxes <= 1)).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (objects[~real] == -1).all()
    np.testing.assert_array_equal(first.train.arrays, second.train.arrays)
    np.testing.assert_array_equal(objects, second.train.labels)
    assert first.class_names[0] == "t-shirt/top"


def test_scenes_hold_out_a_validation_split():
    data = data_lib.load(dataclasses.replace(SCENES, holdout=10), labels="objects")
    assert len(data.train) == 30 and len(data.validation) == 10


def write_coco_folder(root, count=6, seed=0):
    items = np.zeros((4, 28, 28), np.uint8)
    items[:, 4:24, 6:22] = 200  # a bright block: its box is exact
    for split, number in (("train", count), ("test", count // 2)):
        scenes.write_coco(root / split, items, np.array([0, 1, 2, 3]), ["a", "b", "c", "d"],
                          number, seed, size=64, sides=(20, 28))


def test_coco_source_reads_a_folder_per_split(tmp_path):
    write_coco_folder(tmp_path)
    data = data_lib.load(DataConfig(source="coco", dir=str(tmp_path)), labels="objects")
    assert data.class_names == ["a", "b", "c", "d"]
    assert len(data.train) == 6 and len(data.eval) == 3
    annotation = json.loads((tmp_path / "train/instances.json").read_text())
    first = [a for a in annotation["annotations"] if a["image_id"] == 1]
    rows = data.train.labels[0][data.train.labels[0][:, 4] >= 0]
    assert len(rows) == len(first)
    for row, entry in zip(rows, first):
        x, y, w, h = entry["bbox"]
        np.testing.assert_allclose(row, [y / 64, x / 64, (y + h) / 64, (x + w) / 64,
                                         entry["category_id"] - 1], atol=1e-6)


def test_coco_source_skips_a_corrupt_image_and_its_objects(tmp_path, caplog):
    write_coco_folder(tmp_path)
    (tmp_path / "train/images/000002.png").write_bytes(b"not a png")
    data = data_lib.load(DataConfig(source="coco", dir=str(tmp_path)), labels="objects")
    assert len(data.train) == 5 and "000002.png" in caplog.text
    with pytest.raises(UserError, match="000002.png is corrupt"):
        data_lib.load(DataConfig(source="coco", dir=str(tmp_path), corrupt_images="error"),
                      labels="objects")


def test_a_bad_annotation_file_stops_the_run_with_exit_2_naming_the_entry(tmp_path, capsys):
    write_coco_folder(tmp_path)
    path = tmp_path / "train/instances.json"
    annotation = json.loads(path.read_text())
    annotation["annotations"][0]["bbox"] = [50, 50, 40, 40]  # beyond the 64x64 image
    path.write_text(json.dumps(annotation))
    config = tmp_path / "run.yaml"
    config.write_text(f"task: {{name: detection}}\ndata: {{source: coco, dir: {tmp_path}}}\n"
                      "model: {input_shape: [64, 64, 3], alpha: 0.35}\n")
    assert main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "instances.json: annotation id 1: box [50, 50, 40, 40]" in error
    assert "outside its 64x64 image" in error


@functools.cache
def tiny_objects_builder():
    """A tfds detection dataset whose objects carry coco/2017's `is_crowd` and voc's
    `is_difficult`, registered once per process, built offline."""
    import tensorflow_datasets as tfds

    class TinyObjectsDataset(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(32, 32, 3)),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=["x", "y"]),
                    "is_crowd": np.bool_, "is_difficult": np.bool_})}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "test": self._generate_examples(2)}

        def _generate_examples(self, count):
            for i in range(count):
                boxes = [tfds.features.BBox(0.1, 0.2, 0.5, 0.6),
                         tfds.features.BBox(0.0, 0.0, 1.0, 1.0),
                         tfds.features.BBox(0.5, 0.5, 0.7, 0.9)][:1 + i % 3]
                yield i, {"image": np.full((32, 32, 3), 20 * i, np.uint8),
                          "objects": {"bbox": boxes, "label": [i % 2, 0, 1][:len(boxes)],
                                      "is_crowd": [False, True, False][:len(boxes)],
                                      "is_difficult": [False, False, True][:len(boxes)]}}

    return TinyObjectsDataset


def test_tfds_source_gives_objects_without_crowd_regions_or_difficult_ones(tmp_path):
    builder = tiny_objects_builder()(data_dir=str(tmp_path))
    builder.download_and_prepare()
    config = DataConfig(source="tfds", name=builder.name, dir=str(tmp_path))
    data = data_lib.load(config, labels="objects")
    assert data.class_names == ["x", "y"] and (len(data.train), len(data.eval)) == (6, 2)
    labels = data.train.labels
    assert labels.shape == (6, 1, 5)  # crowd and difficult boxes left out
    np.testing.assert_allclose(labels[:, 0, :4], [[0.1, 0.2, 0.5, 0.6]] * 6, atol=1e-6)
    np.testing.assert_array_equal(sorted(labels[:, 0, 4]), [0, 0, 0, 1, 1, 1])
    streamed = data_lib.load(dataclasses.replace(config, cache=False), labels="objects").train
    rows = np.stack([objects.numpy() for _, objects in streamed.ordered(3)])
    assert rows.shape == (6, data_lib.sources.MAX_STREAMED_OBJECTS, 5)
    np.testing.assert_allclose(rows[:, 0], labels[:, 0], atol=1e-6)  # the kept one, then padding
    assert (rows[:, 1:] == -1).all()
    with pytest.raises(UserError, match="has objects .detection data.; the task trains on "
                                        "classes"):
        data_lib.load(config)


@pytest.mark.parametrize("change, message", [
    ({"data": {"source": "sample"}}, "data.source sample is not a source of detection data"),
    ({"data": {"source": "scenes"}, "train": {"teacher": "teacher.keras"}},
     "train.teacher: not available for detection"),
    ({"data": {"source": "scenes"}, "export": {"modes": ["float16"]}},
     "export.modes: detection exports float32 and int8 files, not float16"),
    ({"data": {"source": "scenes"}, "model": {"input_shape": [64, 64, 1]}},
     "model.input_shape: detection takes RGB images"),
])
def test_config_refuses_what_detection_cannot_do(change, message):
    with pytest.raises(UserError, match=message):
        config_lib.from_dict({"task": {"name": "detection"}, **change})


def test_augmentation_moves_boxes_with_their_pixels():
    """One bright block on a dark image: after every seed's crop, flip, resize and jitter, the
    block's pixels in the output fill the box the objects came out with (a flip of one and
    not the other would put them a mirror image apart)."""
    image = np.zeros((80, 100, 3), np.uint8)
    image[10:40, 5:45] = 255
    objects = np.full((3, 5), -1, np.float32)
    objects[0] = [10 / 80, 5 / 100, 40 / 80, 45 / 100, 2]
    config = DataConfig(augment="flip_crop")
    checked = 0
    for seed in range(16):
        out, rows = box_transforms.augment(tf.constant(image), tf.constant(objects),
                                           tf.constant([seed, 0], tf.int64), (48, 48, 3),
                                           config)
        out, rows = out.numpy(), rows.numpy()
        assert out.shape == (48, 48, 3) and rows.shape == (3, 5)
        assert (rows[1:, 4] == -1).all()
        if rows[0, 4] != 2:
            continue  # the crop left the block's centre out
        bright = out[..., 0] > out[..., 0].mean()
        ymin, xmin, ymax, xmax = rows[0, :4] * 48
        inside = np.zeros_like(bright)
        inside[int(np.ceil(ymin)) + 1:int(ymax) - 1, int(np.ceil(xmin)) + 1:int(xmax) - 1] = True
        assert bright[inside].mean() > 0.95
        outside = np.ones_like(bright)
        outside[max(0, int(ymin) - 1):int(np.ceil(ymax)) + 1,
                max(0, int(xmin) - 1):int(np.ceil(xmax)) + 1] = False
        assert bright[outside].mean() < 0.05
        checked += 1
    assert checked >= 8


@pytest.fixture(scope="module")
def small_model():
    tf.keras.utils.set_random_seed(1)
    return ssdlite.build("mobilenet_v2", 10, input_shape=(64, 64, 3), alpha=0.35)


def test_examples_match_each_object_to_anchors(small_model):
    task = tasks.get("detection")
    examples = task.examples(small_model, 10)
    objects = np.full((4, 5), -1, np.float32)
    objects[0] = [0.1, 0.1, 0.5, 0.6, 3]
    objects[1] = [0.55, 0.5, 0.95, 0.9, 7]
    target = examples.target(tf.constant(objects))
    classes, boxes = target["classes"].numpy(), target["boxes"].numpy()
    anchors = sum(h * w * n for (h, w), n in zip(ssdlite.grid_sizes(small_model), [3] + [6] * 5))
    assert classes.shape == (anchors,) and boxes.shape == (anchors, 5)
    assert set(np.unique(classes)) == {0, 4, 8}  # background, class 3 + 1, class 7 + 1
    np.testing.assert_array_equal(boxes[:, 4], classes > 0)
    assert (boxes[classes == 0, :4] == 0).all()
    empty = examples.target(tf.constant(np.full((4, 5), -1, np.float32)))
    assert (empty["classes"].numpy() == 0).all()


def test_imagenet_weights_start_ssdlites_backbone(tmp_path, caplog):
    """`model.weights` (keras.applications' .h5 without classifier) in a detection config:
    the backbone computes what keras.applications' model does; the heads stay as built."""
    from mobilenets import experiment
    from mobilenets.config import ModelConfig
    from tests.models.test_pretrained import reference, save_legacy_h5

    served = reference("mobilenet_v2", {"alpha": 0.35}, include_top=False)
    path = tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
    save_legacy_h5(served, path)
    config = ModelConfig(name="mobilenet_v2", alpha=0.35, input_shape=[96, 96, 3],
                         weights=str(path))
    tf.keras.utils.set_random_seed(2)
    fresh = experiment.build(tasks.get("detection"), ModelConfig(
        name="mobilenet_v2", alpha=0.35, input_shape=[96, 96, 3]), 10)
    tf.keras.utils.set_random_seed(2)
    with caplog.at_level("INFO", logger="mobilenets"):
        model = experiment.build(tasks.get("detection"), config, 10)
    assert "loaded" in caplog.text and "starts fresh" not in caplog.text
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 96, 96, 3)).astype(np.float32)
    expected = served(pixels / 127.5 - 1).numpy()  # keras.applications takes [-1, 1]
    got = ssdlite.backbone_part(model)(pixels).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-4 * np.abs(expected).max())
    for name in ("extra0_reduce_conv", "box0_conv", "class5_conv"):
        for ours, built in zip(model.get_layer(name).weights, fresh.get_layer(name).weights):
            np.testing.assert_array_equal(ours.numpy(), built.numpy())


def test_the_per_output_losses_add_up_to_ssd_loss():
    rng = np.random.default_rng(0)
    classes = rng.choice([0, 0, 0, 1, 2], (3, 40)).astype(np.int32)
    codes = rng.normal(size=(3, 40, 4)).astype(np.float32) * (classes[..., None] > 0)
    logits = rng.normal(size=(3, 40, 3)).astype(np.float32)
    predicted = rng.normal(size=(3, 40, 4)).astype(np.float32)
    for focal in (False, True):
        expected = losses.ssd_loss(classes, codes, logits, predicted, focal=focal).numpy()
        split = losses.keras_losses(focal=focal)
        boxes_target = np.concatenate([codes, (classes > 0)[..., None]], -1)
        total = (split["boxes"](boxes_target, predicted).numpy().mean()
                 + split["classes"](classes.astype(np.float32), logits).numpy().mean())
        assert total == pytest.approx(expected, rel=1e-5)


def test_scores_and_agreement_on_known_detections():
    task = tasks.get("detection")
    truths = np.full((2, 2, 5), -1, np.float32)
    truths[0, 0] = [0.1, 0.1, 0.5, 0.5, 1]
    truths[1, 0] = [0.2, 0.2, 0.6, 0.7, 0]
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[0, 0], boxes[1, 0] = truths[0, 0, :4], truths[1, 0, :4]
    boxes[1, 1] = [0.0, 0.0, 0.1, 0.1]  # a second, wrong, weaker detection
    classes = np.array([[1, 0, 0], [0, 2, 0]], np.float32)
    scores = np.array([[0.9, 0, 0], [0.8, 0.3, 0]], np.float32)
    count = np.array([1, 2], np.float32)
    perfect = (boxes, classes, scores, count)
    metrics = task.scores(perfect, truths, ["a", "b", "c"])
    assert metrics["map50"] == pytest.approx(1.0) and metrics["map"] == pytest.approx(1.0)
    assert metrics["images"] == 2 and metrics["objects"] == 2
    assert metrics["per_class"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0), "c": None}
    assert task.agreement(perfect, perfect) == 1.0
    wrong_class = (boxes, np.array([[2, 0, 0], [0, 2, 0]], np.float32), scores, count)
    assert task.agreement(wrong_class, perfect) == 0.5  # the first image's detection is lost
    assert task.scores(wrong_class, truths, ["a", "b", "c"])["map50"] == pytest.approx(0.5)


def test_the_detection_section_is_the_tasks_own():
    from mobilenets.config import TaskConfig
    from mobilenets.tasks.detection.settings import DetectionConfig

    configured = tasks.get(TaskConfig(name="detection",
                                      detection=DetectionConfig(max_detections=7)))
    assert configured.config.max_detections == 7
    assert tasks.get("detection").config == DetectionConfig()


def test_the_best_model_is_the_lowest_validation_loss(tmp_path):
    checkpointer = Checkpointer(tmp_path, monitor="val_loss", mode="min")
    assert checkpointer.better(5.0)
    checkpointer.best = 5.0
    assert checkpointer.better(4.0) and not checkpointer.better(6.0)
    highest = Checkpointer(tmp_path)
    highest.best = 0.5
    assert highest.better(0.6) and not highest.better(0.4)


QUICK = """
task:
  name: detection
model:
  name: mobilenet_v2
  alpha: 0.35
  input_shape: [64, 64, 3]
data:
  source: scenes
  scene_size: 64
  train_scenes: 64
  eval_scenes: 16
  augment: flip_crop
""" + ONE_EPOCH


@pytest.mark.slow
def test_detection_trains_evaluates_exports_predicts_and_resumes_from_the_cli(tmp_path, capsys,
                                                                           caplog):
    config = tmp_path / "detection.yaml"
    config.write_text(QUICK)
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["images"] == 16 and metrics["objects"] > 0 and metrics["steps"] == 4
    assert set(metrics["per_class"]) == set(data_lib.sources.FASHION_MNIST_CLASSES)
    assert (workdir / "eval.detections.png").is_file()
    assert (workdir / "checkpoints/best.keras").is_file()
    report = json.loads((workdir / "export/report.json").read_text())
    assert list(report["files"]) == ["model_float32.tflite", "model_int8.tflite"]
    for entry in report["files"].values():
        assert entry["partitions"] == 1
        assert entry["ops_outside_xnnpack"] == ["TFLite_Detection_PostProcess"]
        assert 0 <= entry["map50"] <= 1
    assert report["files"]["model_int8.tflite"]["input"]["dtype"] == "uint8"
    for model in ("model.keras", "export/model_float32.tflite"):
        capsys.readouterr()
        assert main(["evaluate", "--config", str(config), "--model",
                     str(workdir / model)]) == 0
        scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert scored["images"] == 16
    assert scored["map50"] == report["files"]["model_float32.tflite"]["map50"]
    assert (workdir / "export/model_float32.tflite.detections.png").is_file()
    assert Image.open(workdir / "eval.detections.png").size[0] > 100
    scene = data_lib.load(dataclasses.replace(SCENES, train_scenes=1), splits=("eval",),
                          labels="objects").eval.arrays[0]
    Image.fromarray(scene).save(tmp_path / "scene.png")
    found = {}
    for model in ("model.keras", "export/model_float32.tflite", "export/model_int8.tflite"):
        capsys.readouterr()
        assert main(["predict", str(workdir / model), str(tmp_path / "scene.png"), "--top", "5",
                     "--json"]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        found[model] = result["detections"]
        assert len(found[model]) == 5
        assert all(d["label"] in data_lib.sources.FASHION_MNIST_CLASSES for d in found[model])
    best = found["model.keras"][0]  # the float file finds it too (near-ties may reorder)
    assert any(d["label"] == best["label"] and np.allclose(d["box"], best["box"], atol=2e-3)
               and d["score"] == pytest.approx(best["score"], abs=1e-3)
               for d in found["export/model_float32.tflite"])

    # Asked for 2 epochs, the finished run resumes from its checkpoint: the best model so far
    # (least validation loss, from state.json) carries over, one more history row.
    first = json.loads((workdir / "checkpoints/state.json").read_text())["best"]
    caplog.clear()
    with caplog.at_level("INFO", logger="mobilenets"):
        assert main(["train", "--config", str(config), "--workdir", str(workdir), "--set",
                     "train.epochs=2", "export.modes=[]"]) == 0
    assert "resumed from epoch 2, step 0 (global step 4 of 8)" in caplog.text
    lines = (workdir / "history.csv").read_text().splitlines()
    assert len(lines) == 3
    column = lines[0].split(",").index("val_loss")
    best = json.loads((workdir / "checkpoints/state.json").read_text())["best"]
    assert best == pytest.approx(min(first, float(lines[2].split(",")[column])))


@pytest.mark.slow
def test_qat_trains_ssdlite_into_an_int8_file_that_detects_as_the_qat_model(tmp_path, capsys):
    """QAT for detection (from scratch here, an epoch of 4 steps, then one with BatchNorm and
    the ranges frozen): the QAT model keeps the outputs' names (the history logs boxes_loss in
    both phases), its int8 file ends in the post-process op with the rest in one XNNPACK
    partition, `evaluate` on model_qat.h5 scores what the export reported for it, and the
    file's best detection is one of the QAT model's."""
    config = tmp_path / "detection.yaml"
    config.write_text(QUICK.replace("epochs: 1", "epochs: 2") + "qat:\n  enabled: true\n"
                      "  freeze_bn_after_epochs: 1\n  freeze_ranges_after_epochs: 1\n")
    workdir = tmp_path / "run"
    assert main(["train", "--config", str(config), "--workdir", str(workdir)]) == 0
    history = (workdir / "history.csv").read_text()
    header = history.splitlines()[0].split(",")
    assert {"boxes_loss", "classes_loss", "val_boxes_loss"} <= set(header)
    assert len(history.splitlines()) == 3 and "NA" not in history
    report = json.loads((workdir / "export/report.json").read_text())
    assert report["keras_model"] == "model_qat.h5"
    (entry,) = report["files"].values()
    assert list(report["files"]) == ["model_qat_int8.tflite"]
    assert entry["partitions"] == 1
    assert entry["ops_outside_xnnpack"] == ["TFLite_Detection_PostProcess"]
    assert entry["input"]["dtype"] == "uint8"
    capsys.readouterr()
    assert main(["evaluate", "--config", str(config), "--model",
                 str(workdir / "model_qat.h5")]) == 0
    scored = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scored["map50"] == report["float"]["map50"]
    scene = data_lib.load(dataclasses.replace(SCENES, train_scenes=1), splits=("eval",),
                          labels="objects").eval.arrays[0]
    Image.fromarray(scene).save(tmp_path / "scene.png")
    found = {}
    for model in ("model_qat.h5", "export/model_qat_int8.tflite"):
        capsys.readouterr()
        assert main(["predict", str(workdir / model), str(tmp_path / "scene.png"), "--top", "5",
                     "--json"]) == 0
        (result,) = json.loads(capsys.readouterr().out)
        found[model] = result["detections"]
    best = found["export/model_qat_int8.tflite"][0]
    assert any(d["label"] == best["label"] and np.allclose(d["box"], best["box"], atol=0.01)
               and d["score"] == pytest.approx(best["score"], abs=0.02)
               for d in found["model_qat.h5"])


