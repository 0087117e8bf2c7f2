"""Data sources on tiny data, preprocessing, and the resumable training stream."""

import dataclasses
import functools
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import pipeline, sources, transforms
from mobilenets.data.splits import RecordSplit
from mobilenets.errors import UserError


def one_hot(classes):
    """The classification task's targets."""
    return pipeline.classifying(lambda label: tf.one_hot(label, classes))


def test_idx_round_trip_and_truncation(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    sources.write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(sources.read_idx(tmp_path / "a.gz"), array)
    raw = bytearray(open(tmp_path / "a.gz", "rb").read())
    import gzip
    (tmp_path / "b").write_bytes(gzip.decompress(bytes(raw))[:-5])
    with pytest.raises(UserError, match="truncated IDX file"):
        sources.read_idx(tmp_path / "b")


def test_bundled_sample_is_balanced_fashion_mnist():
    data = data_lib.load(DataConfig(source="sample", full_test_set=False))
    assert len(data.class_names) == 10 and data.class_names[0] == "t-shirt/top"
    assert data.train.arrays.shape[1:] == (28, 28, 1)
    for split in (data.train, data.eval):
        counts = np.bincount(split.labels, minlength=10)
        assert (counts == counts[0]).all() and counts[0] >= 100


def test_sample_evaluates_on_the_full_test_set_when_installed(tmp_path):
    test_images = np.full((30, 28, 28), 7, np.uint8)
    sources.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_images)
    sources.write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(30, dtype=np.uint8) % 10)
    data = data_lib.load(DataConfig(source="sample", dir=str(tmp_path)))
    assert len(data.eval) == 30 and (data.eval.arrays == 7).all()
    assert len(data.train) == len(data_lib.load(DataConfig(source="sample")).train)
    sample = data_lib.load(DataConfig(source="sample", dir=str(tmp_path / "absent")))
    assert len(sample.eval) == 2000


def test_missing_fashion_mnist_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(UserError, match=r"data.dir: Fashion-MNIST folder .*nothing not found "
                                        r"\(on Debian: apt-get install dataset-fashion-mnist\)"):
        data_lib.load(DataConfig(source="fashion_mnist", dir=str(tmp_path / "nothing")))
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte.gz not found"):
        data_lib.load(DataConfig(source="fashion_mnist", dir=str(tmp_path)))


def make_folder(root, classes=("cat", "dog"), per_class=6, sizes=((40, 30), (20, 24))):
    """Class subfolders of small PNG/JPEG images; each image's mean encodes its class."""
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            w, h = sizes[i % len(sizes)]
            value = 40 + 150 * label
            mode = "L" if i % 3 == 0 else "RGB"
            image = Image.new(mode, (w, h), value if mode == "L" else (value,) * 3)
            image.save(folder / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_folder_with_validation_fraction(tmp_path):
    make_folder(tmp_path / "images")
    config = DataConfig(source="folder", dir=str(tmp_path / "images"), validation_fraction=0.34)
    data = data_lib.load(config)
    assert data.class_names == ["cat", "dog"]
    assert len(data.train) == 8 and len(data.eval) == 4
    assert sorted(np.bincount(data.eval.labels)) == [2, 2]
    images, targets = next(iter(pipeline.eval_dataset(data.eval, config, (16, 16, 3),
                                                      one_hot(2), 8)))
    assert images.shape == (4, 16, 16, 3) and images.dtype == tf.float32
    means = images.numpy().mean(axis=(1, 2, 3))
    np.testing.assert_allclose(means, 40 + 150 * targets.numpy().argmax(1), atol=2)


def test_folder_with_split_subfolders_and_grayscale_model(tmp_path):
    make_folder(tmp_path / "train")
    make_folder(tmp_path / "test", per_class=2)
    config = DataConfig(source="folder", dir=str(tmp_path))
    data = data_lib.load(config)
    assert (len(data.train), len(data.eval)) == (12, 4)
    stream = pipeline.train_dataset(data.train, config, (24, 24, 1), one_hot(2), 4, seed=1)
    images, labels = next(iter(stream))
    assert images.shape == (4, 24, 24, 1) and labels.shape == (4, 2)


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match=r"data.dir: image folder .*missing.* not found"):
        data_lib.load(DataConfig(source="folder", dir=str(tmp_path / "missing")))
    (tmp_path / "flat").mkdir()
    with pytest.raises(UserError, match=r"has no class subfolders"):
        data_lib.load(DataConfig(source="folder", dir=str(tmp_path / "flat"),
                                 validation_fraction=0.2))
    with pytest.raises(UserError, match=r"set data.validation_fraction"):
        data_lib.load(DataConfig(source="folder", dir=str(tmp_path / "flat")))
    make_folder(tmp_path / "some")
    (tmp_path / "some" / "empty").mkdir()
    with pytest.raises(UserError, match=r"class folder .*empty has no images"):
        data_lib.load(DataConfig(source="folder", dir=str(tmp_path / "some"),
                                 validation_fraction=0.2))


def test_corrupt_images_are_skipped_or_named(tmp_path, caplog):
    make_folder(tmp_path / "images")
    good = (tmp_path / "images" / "cat" / "1.png").read_bytes()
    (tmp_path / "images" / "cat" / "broken.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "images" / "dog" / "noise.jpg").write_bytes(b"not an image at all")
    config = DataConfig(source="folder", dir=str(tmp_path / "images"), validation_fraction=0.2)
    data = data_lib.load(config)
    assert len(data.train) + len(data.eval) == 12
    assert "skipped 2 image(s)" in caplog.text
    assert "corrupt, truncated or not an image" in caplog.text
    with pytest.raises(UserError, match=r"image .*broken.png is corrupt, truncated"):
        data_lib.load(dataclasses.replace(config, corrupt_images="error"))


def test_training_stream_resumes_at_any_step():
    """Batch k of a stream started at 0 equals batch 0 of a stream started at step k, across
    epoch boundaries: a resumed run sees exactly the images the interrupted one would have."""
    data = data_lib.load(DataConfig(source="sample", train_limit=50))
    config = DataConfig(source="sample", augment="inception")
    shape = (32, 32, 1)
    full = [b for b, _ in
            pipeline.train_dataset(data.train, config, shape, one_hot(10), 8, 7).take(9)]
    resumed = [b for b, _ in pipeline.train_dataset(data.train, config, shape, one_hot(10), 8, 7,
                                                    start_step=7).take(2)]
    np.testing.assert_array_equal(resumed[0], full[7])  # 50 images: epoch 2 starts in batch 6
    np.testing.assert_array_equal(resumed[1], full[8])
    assert not np.array_equal(full[0], full[1])
    other_seed = next(iter(pipeline.train_dataset(data.train, config, shape, one_hot(10), 8, 8)))[0]
    assert not np.array_equal(other_seed, full[0])


def test_epochs_are_permutations():
    data = data_lib.load(DataConfig(source="sample", train_limit=40))
    config = DataConfig(source="sample", augment="none", small_images="pad")
    stream = pipeline.train_dataset(data.train, config, (28, 28, 1), one_hot(10), 40, 3).take(2)
    originals = {data.train.arrays[i].tobytes(): i for i in range(40)}
    for images, _ in stream:
        seen = sorted(originals[img.astype(np.uint8).tobytes()]
                      for img in images.numpy())
        assert seen == list(range(40))


def test_small_images_pad_or_resize():
    image = tf.fill((28, 28, 1), tf.constant(200, tf.uint8))
    padded = transforms.eval_transform(image, (32, 32, 1), DataConfig(small_images="pad"))
    assert float(padded[0, 0, 0]) == 0.0 and float(padded[16, 16, 0]) == 200.0
    resized = transforms.eval_transform(image, (32, 32, 1), DataConfig(crop_fraction=1.0))
    np.testing.assert_allclose(resized.numpy(), 200.0)


def test_eval_central_crop():
    ramp = tf.cast(tf.tile(tf.range(0, 200, 2)[None, :, None], (100, 1, 1)), tf.uint8)
    out = transforms.eval_transform(ramp, (50, 50, 1), DataConfig(crop_fraction=0.5))
    # Resized to 100 then the central 50 kept: the ramp's middle half, 50..150.
    assert 45 <= float(out[0, 0, 0]) <= 55 and 145 <= float(out[0, -1, 0]) <= 155


@pytest.mark.parametrize("padding, expected", [(0, 4), (2, 2)])  # 0: 1/8 of 32 pixels
def test_flip_crop_shifts_by_at_most_the_padding(padding, expected):
    image = tf.fill((32, 32, 1), tf.constant(255, tf.uint8))
    config = DataConfig(augment="flip_crop", crop_padding=padding)
    shifts = []
    for i in range(40):
        out = transforms.train_transform(image, tf.constant([i, 7]), (32, 32, 1), config).numpy()
        black_rows = int((out.max(axis=(1, 2)) == 0).sum())
        black_cols = int((out.max(axis=(0, 2)) == 0).sum())
        assert (out == 255).sum() == (32 - black_rows) * (32 - black_cols)  # shifted, not scaled
        shifts += [black_rows, black_cols]
    assert max(shifts) == expected and min(shifts) == 0


def test_random_erasing_paints_one_noise_rectangle_in_about_half_the_images():
    image = tf.zeros((64, 64, 1), tf.uint8)  # any erased pixel becomes nonzero noise
    config = DataConfig(augment="none", erase_probability=0.5)
    erased = []
    for i in range(200):
        out = transforms.train_transform(image, tf.constant([i, 3]), (64, 64, 1), config).numpy()
        noise = out[..., 0] > 0
        if noise.any():
            rows, cols = np.flatnonzero(noise.any(axis=1)), np.flatnonzero(noise.any(axis=0))
            box = out[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            assert (box > 0).mean() > 0.98  # one filled rectangle (noise is 0 with p ~ 1/255)
            erased.append(box.size / out.size)
    assert 80 <= len(erased) <= 120  # binomial(200, 0.5): 4 standard deviations
    assert 0.02 - 0.005 <= min(erased) and max(erased) <= 0.4 + 0.02
    first = transforms.train_transform(image, tf.constant([5, 3]), (64, 64, 1), config)
    again = transforms.train_transform(image, tf.constant([5, 3]), (64, 64, 1), config)
    np.testing.assert_array_equal(again.numpy(), first.numpy())  # seeded by stream position


@functools.cache
def tiny_shapes_builder():
    """A two-class tfds dataset (registered once per process) that builds offline."""
    import tensorflow_datasets as tfds

    class TinyShapesDataset(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(20, 20, 3)),
                "label": tfds.features.ClassLabel(names=["dark", "light"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(12),
                    "test": self._generate_examples(4)}

        def _generate_examples(self, count):
            for i in range(count):
                label = i % 2
                yield i, {"image": np.full((20, 20, 3), 30 + 180 * label, np.uint8),
                          "label": label}

    return TinyShapesDataset


def build_tiny_shapes(data_dir):
    builder = tiny_shapes_builder()(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder.name


def test_tfds_source(tmp_path):
    name = build_tiny_shapes(tmp_path)
    config = DataConfig(source="tfds", name=name, dir=str(tmp_path))
    data = data_lib.load(config)
    assert data.class_names == ["dark", "light"]
    assert (len(data.train), len(data.eval)) == (12, 4)
    images, targets = next(iter(pipeline.eval_dataset(data.eval, config, (16, 16, 3),
                                                      one_hot(2), 4)))
    np.testing.assert_allclose(images.numpy().mean(axis=(1, 2, 3)),
                               30 + 180 * targets.numpy().argmax(1), atol=1)
    with pytest.raises(UserError, match=r"has no split 'validation'; it has"):
        data_lib.load(dataclasses.replace(config, eval_split="validation"))


def test_tfds_not_prepared_points_to_manual_dir(tmp_path):
    with pytest.raises(UserError, match=r"(not prepared|no dataset).*"):
        data_lib.load(DataConfig(source="tfds", name="imagenet2012", dir=str(tmp_path)))
    with pytest.raises(UserError, match=r"data.name: set the tfds dataset name"):
        data_lib.load(DataConfig(source="tfds"))


def test_tfds_split_too_large_for_memory_is_streamed(tmp_path):
    name = build_tiny_shapes(tmp_path)
    config = DataConfig(source="tfds", name=name, dir=str(tmp_path), cache=False,
                        augment="none")
    data = data_lib.load(config)
    assert isinstance(data.train, RecordSplit)
    assert (len(data.train), len(data.eval)) == (12, 4)
    images, targets = next(iter(pipeline.eval_dataset(data.eval, config, (16, 16, 3),
                                                      one_hot(2), 4)))
    np.testing.assert_allclose(images.numpy().mean(axis=(1, 2, 3)),
                               30 + 180 * targets.numpy().argmax(1), atol=1)
    # Each epoch holds every image once (6 of each class); resuming at step 5 (epoch 2,
    # image 3) gives the batches the uninterrupted stream gives there.
    full = [labels.numpy().argmax(1) for _, labels in
            pipeline.train_dataset(data.train, config, (16, 16, 3), one_hot(2), 3, 7).take(8)]
    assert np.bincount(np.concatenate(full[:4])).tolist() == [6, 6]
    resumed = [labels.numpy().argmax(1) for _, labels in
               pipeline.train_dataset(data.train, config, (16, 16, 3), one_hot(2), 3, 7,
                                      start_step=5).take(3)]
    for got, expected in zip(resumed, full[5:8]):
        np.testing.assert_array_equal(got, expected)
    assert len(list(pipeline.calibration_images(data.train, (16, 16, 3), 5))) == 5


def test_holdout_keeps_classes_balanced_and_is_the_same_for_every_training_seed():
    config = DataConfig(source="sample", full_test_set=False, holdout=1000)
    data = data_lib.load(config, seed=1)
    assert (len(data.train), len(data.validation)) == (9000, 1000)
    assert (np.bincount(data.validation.labels) == 100).all()
    again = data_lib.load(config, seed=2)  # another training seed: the same held-out images
    np.testing.assert_array_equal(again.validation.arrays, data.validation.arrays)
    whole = data_lib.load(DataConfig(source="sample", full_test_set=False)).train
    rows = {row.tobytes() for row in whole.arrays}
    held = {row.tobytes() for row in data.validation.arrays}
    kept = {row.tobytes() for row in data.train.arrays}
    assert held <= rows and not held & kept  # a partition of the training split
    other = data_lib.load(dataclasses.replace(config, holdout_seed=1)).validation
    assert not np.array_equal(other.arrays, data.validation.arrays)
    fraction = data_lib.load(dataclasses.replace(config, holdout=0.1))
    np.testing.assert_array_equal(fraction.validation.arrays, data.validation.arrays)
    assert data_lib.load(config, splits=("eval",)).validation is None
    with pytest.raises(UserError, match=r"data.holdout 10000 is not smaller than the training "
                                        r"split \(10000 images\)"):
        data_lib.load(dataclasses.replace(config, holdout=10000))


def test_client_transform_stretches_the_whole_image_to_the_input():
    """What Android's clients do: no padding, no crop, gray becomes RGB (or the reverse)."""
    image = np.zeros((28, 20, 1), np.uint8)
    image[0] = 255  # a white top row
    out = transforms.client_transform(image, (32, 32, 3)).numpy()
    assert out.shape == (32, 32, 3) and (out[..., 0] == out[..., 2]).all()
    assert out[0].min() > 100  # the top row reaches the edge: stretched, not padded
    assert out[8:].max() == 0


def test_hidden_folders_are_left_out_and_other_files_counted(tmp_path, caplog):
    make_folder(tmp_path / "images")
    checkpoint = tmp_path / "images/cat/.ipynb_checkpoints"
    checkpoint.mkdir()
    shutil.copy(next((tmp_path / "images/dog").glob("*")), checkpoint / "copy.png")
    shutil.copy(next((tmp_path / "images/dog").glob("*")), tmp_path / "images/cat/.hidden.png")
    (tmp_path / "images/cat/drawing.svg").write_text("<svg/>")
    (tmp_path / "images/cat/notes.txt").write_text("x")
    caplog.set_level("WARNING", logger="mobilenets")
    data = data_lib.load(DataConfig(source="folder", dir=str(tmp_path / "images"),
                                    validation_fraction=0.34))
    assert len(data.train) + len(data.eval) == 12  # as without the hidden files
    assert "left out 2 file(s)" in caplog.text and "1 .svg, 1 .txt" in caplog.text


def test_a_stream_that_can_make_no_example_is_an_error_not_a_silent_skip():
    """A target that fails on every image (a bug, not a bad file: files are checked on
    loading) stops with its message; one that fails on some images only passes the check,
    and those images are skipped in training as `data.corrupt_images: skip` says."""
    split = data_lib.Split(labels=np.arange(6) % 2, arrays=np.zeros((6, 8, 8, 1), np.uint8))
    config = DataConfig(augment="none")

    def failing(first_good):
        def target(label):
            tf.debugging.assert_greater_equal(label, first_good, message="no target for it")
            return tf.one_hot(label, 2)
        return pipeline.classifying(target)

    with pytest.raises(UserError, match="the first 16 training examples all fail, so training "
                                        "cannot start: .*no target for it"):
        pipeline.check_training_examples(split, config, (8, 8, 1), failing(5), seed=0)
    pipeline.check_training_examples(split, config, (8, 8, 1), failing(1), seed=0)
    _, labels = next(iter(pipeline.train_dataset(split, config, (8, 8, 1), failing(1), 4, 0)))
    assert (labels.numpy().argmax(1) == 1).all()


def write_records(folder, lengths):
    """Record files of serialized labels, `lengths[i]` in file i; a parse of them."""
    files, label = [], 0
    for index, length in enumerate(lengths):
        path = str(folder / f"part-{index}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(length):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))})
                ).SerializeToString())
                label += 1
        files.append(path)

    def parse(serialized):
        label = tf.io.parse_single_example(
            serialized, {"label": tf.io.FixedLenFeature([], tf.int64)})["label"]
        return tf.strings.as_string(label), label
    return files, parse


def labels_of(split):
    """The labels a stream's evaluation order reads (its files, up to its count)."""
    return [int(label) for _, label in tf.data.TFRecordDataset(split.files).take(split.count)
            .map(split.parse).as_numpy_iterator()]


def test_a_stream_holds_out_whole_files_seeded(tmp_path):
    files, parse = write_records(tmp_path, [5, 5, 5, 5, 3])
    stream = RecordSplit(files=files, count=23, parse=parse, lengths=[5, 5, 5, 5, 3])
    rest, held = stream.hold_out(7 / 23, seed=0, total=7)
    assert len(held) >= 7 and len(held) + len(rest) == 23
    assert len(held.files) == 2 and len(rest.files) == 3
    assert held.lengths == [stream.lengths[files.index(f)] for f in held.files]
    assert set(labels_of(held)).isdisjoint(labels_of(rest))
    assert sorted(labels_of(held) + labels_of(rest)) == list(range(23))
    again, _ = stream.hold_out(7 / 23, seed=0, total=7)
    assert again.files == rest.files  # the seed decides which files
    assert any(stream.hold_out(7 / 23, seed=seed, total=7)[0].files != rest.files
               for seed in range(1, 6))
    with pytest.raises(ValueError, match=r"take all 5 of its files"):
        stream.hold_out(1.0, seed=0, total=23)
    with pytest.raises(ValueError, match=r"image counts are unknown"):
        RecordSplit(files=files, count=23, parse=parse).hold_out(0.1, seed=0)


def test_holdout_from_a_tfds_stream_is_told_when_the_files_are_too_few(tmp_path):
    name = build_tiny_shapes(tmp_path)  # 12 training images in one file
    config = DataConfig(source="tfds", name=name, dir=str(tmp_path), cache=False, holdout=2)
    with pytest.raises(UserError, match=r"data.holdout 2: a stream is held out by whole files, "
                                        r"and 2 images take all 1 of its files"):
        data_lib.load(config)
