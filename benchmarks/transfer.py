"""Transfer learning, measured: a MobileNetV2 pretrained on Fashion-MNIST's classes 0-4, then
fine-tuned on 50 images of each of classes 5-9, against the same model trained from scratch on
those 250 images for the same epochs; both scored on the 5,000 test images of classes 5-9.

    python benchmarks/transfer.py [--workdir runs/transfer]

Writes the two image folders (PNG, one subfolder per class: what a user has), runs three
`mobilenets train` commands (pretrain, fine-tune, scratch) and writes results/transfer.json with
their top-1, commands, date, commit and machine. Needs the Debian package dataset-fashion-mnist.
About 15 minutes on 2 cores.
"""

import argparse
import json
import pathlib
import shlex
import subprocess
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import provenance  # noqa: E402

from mobilenets.data.sources import (  # noqa: E402
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    read_idx,
)

PRETRAIN_CLASSES, TARGET_CLASSES = range(0, 5), range(5, 10)
SHOTS = 50  # training images per target class
SEED = 0

COMMON = """model:
  name: mobilenet_v2
  alpha: 0.35
  input_shape: [32, 32, 1]
{init}data:
  source: folder
  dir: {dir}
  augment: flip
  small_images: resize
  crop_fraction: 1.0
train:
  batch_size: {batch}
  optimizer: {{type: sgd, sgd: {{nesterov: true}}}}
  schedule: cosine
  weight_decay: 4.0e-5
  label_smoothing: 0.0
  bn_momentum: 0.9
  seed: {seed}
{train}export:
  modes: []
"""
PRETRAIN = """  epochs: {epochs}
  learning_rate: 0.05
  warmup_epochs: 1
"""
# The target runs: 250 images, batch 25 (10 steps per epoch), the same epochs for both.
FINE_TUNE = """  epochs: {epochs}
  learning_rate: 0.01
  freeze_backbone_epochs: 5
  restart_schedule: true
"""
SCRATCH = """  epochs: {epochs}
  learning_rate: 0.05
  warmup_epochs: 1
"""


def write_folder(root, split, images, labels, classes, per_class=None):
    """PNG files under root/split/<class>/ for `classes` (at most `per_class` of each, the
    first of a seeded shuffle)."""
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(labels))
    for label in classes:
        chosen = [i for i in order if labels[i] == label][:per_class]
        folder = root / split / FASHION_MNIST_CLASSES[label].replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for i in chosen:
            Image.fromarray(images[i]).save(folder / f"{i:05d}.png")


def run(command):
    """Runs `mobilenets` with `command`'s arguments; returns the command as run from a clone."""
    print("$ mobilenets", " ".join(command), flush=True)
    subprocess.run([sys.executable, "-m", "mobilenets", *command], check=True)
    return shlex.join(["mobilenets", *map(provenance.portable, command)])


def config_text(template, init="", **values):
    """A config: COMMON with `template`'s train keys, started from `init` if given."""
    init = f"  init_from: {init}\n" if init else ""
    return COMMON.format(train=template.format(**values), init=init, **values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="runs/transfer")
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30, help="fine-tune and scratch epochs")
    args = parser.parse_args()
    root = pathlib.Path(args.workdir).resolve()
    source = pathlib.Path(FASHION_MNIST_DIR)
    train_images = read_idx(source / "train-images-idx3-ubyte.gz")
    train_labels = read_idx(source / "train-labels-idx1-ubyte.gz")
    test_images = read_idx(source / "t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(source / "t10k-labels-idx1-ubyte.gz")
    pretrain_data, target_data = root / "data_0_4", root / "data_5_9"
    if not pretrain_data.exists():
        write_folder(pretrain_data, "train", train_images, train_labels, PRETRAIN_CLASSES)
        write_folder(pretrain_data, "test", test_images, test_labels, PRETRAIN_CLASSES)
    if not target_data.exists():
        write_folder(target_data, "train", train_images, train_labels, TARGET_CLASSES, SHOTS)
        write_folder(target_data, "test", test_images, test_labels, TARGET_CLASSES)

    runs = {
        "pretrain": config_text(PRETRAIN, dir=pretrain_data, batch=128, seed=SEED,
                                epochs=args.pretrain_epochs),
        "fine_tune": config_text(FINE_TUNE, dir=target_data, batch=25, seed=SEED,
                                 epochs=args.epochs, init=root / "pretrain/model.keras"),
        "scratch": config_text(SCRATCH, dir=target_data, batch=25, seed=SEED,
                               epochs=args.epochs),
    }
    rows = {}
    for name, text in runs.items():
        config = root / f"{name}.yaml"
        config.write_text(text)
        command = run(["train", "--config", str(config), "--workdir", str(root / name)])
        metrics = json.loads((root / name / "metrics.json").read_text())
        rows[name] = {"top1": metrics["top1"], "images": metrics["eval_images"],
                      "train_images": metrics["train_images"], "epochs": metrics["epochs"],
                      "train_seconds": metrics["train_seconds"], "command": command,
                      "config": text.replace(str(root), provenance.portable(str(root)))}
    result = {**provenance.stamp(), "measurement": provenance.title(__doc__), "runs": rows}
    path = provenance.ROOT / "results" / "transfer.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({name: row["top1"] for name, row in rows.items()}), "->", path)


if __name__ == "__main__":
    main()
