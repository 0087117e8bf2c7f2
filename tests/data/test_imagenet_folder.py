"""ImageNet as its users keep it: train/<synset>/*.JPEG and a flat val/ folder whose classes
come from a labels file (Kaggle's CSV, or TFDS's one synset per line), read by the ImageNet
recipes with one override."""

import io
import pathlib

import numpy as np
import pytest
from PIL import Image

from mobilenets import config as config_lib
from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.errors import UserError

SYNSETS = ("n01440764", "n01443537", "n01484850")
EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments"


def gray(path, value):
    Image.new("RGB", (36, 28), (value,) * 3).save(path, quality=95)


def imagenet_tree(root, per_class=2):
    """A tiny ImageNet: each class's images a shade of its own (40, 110, 180); val/ holds
    ILSVRC2012_val_00000001.JPEG ... in the class order 2, 0, 1, 2, 0, 1."""
    for label, synset in enumerate(SYNSETS):
        (root / "train" / synset).mkdir(parents=True)
        for i in range(per_class):
            gray(root / "train" / synset / f"{synset}_{i}.JPEG", 40 + 70 * label)
    (root / "val").mkdir()
    truth = [2, 0, 1, 2, 0, 1]
    for i, label in enumerate(truth, 1):
        gray(root / "val" / f"ILSVRC2012_val_{i:08d}.JPEG", 40 + 70 * label)
    return truth


def kaggle_csv(root, truth):
    rows = ["ImageId,PredictionString"] + [
        f"ILSVRC2012_val_{i:08d},{SYNSETS[label]} 1 2 30 40 {SYNSETS[label]} 5 6 20 20"
        for i, label in reversed(list(enumerate(truth, 1)))]  # any row order
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    return root / "LOC_val_solution.csv"


def class_of_each_image(split):
    """The class each image's shade says, next to the label the split gives it."""
    images = split.encoded if split.encoded is not None else split.paths
    shades = []
    for image in images:
        pixels = np.asarray(Image.open(io.BytesIO(image) if isinstance(image, bytes) else image))
        shades.append(int(round((pixels.mean() - 40) / 70)))
    return shades, list(split.labels)


@pytest.mark.parametrize("layout", ["csv", "lines"])
def test_a_flat_validation_folder_takes_its_classes_from_a_labels_file(tmp_path, layout):
    truth = imagenet_tree(tmp_path)
    if layout == "csv":
        labels = kaggle_csv(tmp_path, truth)
    else:  # TFDS's imagenet2012_validation_labels.txt: a synset per file, sorted by name
        labels = tmp_path / "validation_labels.txt"
        labels.write_text("".join(f"{SYNSETS[label]}\n" for label in truth))
    config = DataConfig(source="folder", dir=str(tmp_path), train_split="train",
                        eval_split="val", eval_labels=str(labels))
    data = data_lib.load(config)
    assert data.class_names == list(SYNSETS)
    assert (len(data.train), len(data.eval)) == (6, 6)
    shades, given = class_of_each_image(data.eval)
    assert given == shades and sorted(given) == [0, 0, 1, 1, 2, 2]


def test_the_imagenet_recipes_read_such_a_folder_with_one_override(tmp_path):
    truth = imagenet_tree(tmp_path)
    labels = kaggle_csv(tmp_path, truth)
    override = (f"data={{source: folder, dir: {tmp_path}, eval_split: val, "
                f"eval_labels: {labels}}}")
    config = config_lib.load(EXPERIMENTS / "v2_imagenet.yaml", [override])
    assert (config.data.source, config.data.augment) == ("folder", "inception")  # kept
    data = data_lib.load(config.data)
    assert data.class_names == list(SYNSETS) and len(data.eval) == 6


def test_labels_file_errors_name_the_file_and_the_row(tmp_path):
    truth = imagenet_tree(tmp_path)
    base = dict(source="folder", dir=str(tmp_path), eval_split="val")
    with pytest.raises(UserError, match=r"data.eval_labels: no file .*missing.csv"):
        data_lib.load(DataConfig(**base, eval_labels=str(tmp_path / "missing.csv")))
    short = tmp_path / "short.txt"
    short.write_text("n01440764\n")
    with pytest.raises(UserError, match=r"short.txt has 1 labels for 6 images"):
        data_lib.load(DataConfig(**base, eval_labels=str(short)))
    typo = tmp_path / "typo.txt"
    typo.write_text("".join(f"{SYNSETS[label]}\n" for label in truth).replace(
        "n01484850", "n0148485", 1))
    with pytest.raises(UserError, match=r"typo.txt line 1: 'n0148485' is not a class \(the "
                                        r"class folders of the training split: n01440764, "):
        data_lib.load(DataConfig(**base, eval_labels=str(typo)))
    partial = kaggle_csv(tmp_path, truth)
    partial.write_text("\n".join(partial.read_text().splitlines()[:-2]) + "\n")
    with pytest.raises(UserError, match=r"has no row for 2 of the 6 images "
                                        r"\(ILSVRC2012_val_00000001.JPEG, "
                                        r"ILSVRC2012_val_00000002.JPEG\)"):
        data_lib.load(DataConfig(**base, eval_labels=str(partial)))
    with pytest.raises(UserError, match=r"data.eval_labels is read by data.source folder"):
        config_lib.from_dict({"data": {"source": "sample", "eval_labels": str(short)}})
