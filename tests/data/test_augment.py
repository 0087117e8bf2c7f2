"""RandAugment, MixUp and CutMix: images and labels stay consistent, and the stream stays a
function of (seed, position) so a resumed run sees the same batches."""

import numpy as np
import pytest
import tensorflow as tf

from mobilenets import data as data_lib
from mobilenets.config import DataConfig
from mobilenets.data import augment, pipeline

CLASSES = 8
ONE_HOT = pipeline.classifying(lambda label: tf.one_hot(label, 10))


def constant_batch():
    """8 images, image i filled with 10 * (i + 1) (so each pixel tells where it came from),
    labelled i."""
    values = 10.0 * np.arange(1, CLASSES + 1, dtype=np.float32)
    images = np.broadcast_to(values[:, None, None, None], (CLASSES, 16, 20, 3)).copy()
    return tf.constant(images), tf.one_hot(np.arange(CLASSES), CLASSES)


def seed(n):
    return tf.constant([7, n], tf.int64)


@pytest.mark.parametrize("n", range(5))
def test_mixup_blends_pixels_by_the_labels_weights(n):
    images, labels = constant_batch()
    mix = augment.BatchMixer(DataConfig(mixup_alpha=0.8))
    mixed, targets = (t.numpy() for t in mix(images, labels, seed(n)))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(CLASSES):
        # pixels: w * own + (1 - w) * partner's, with w and the partner read off the label
        expected = (targets[i] * 10.0 * np.arange(1, CLASSES + 1)).sum()
        np.testing.assert_allclose(mixed[i], expected, rtol=1e-5)
        assert np.count_nonzero(targets[i] > 1e-6) <= 2


@pytest.mark.parametrize("n", range(5))
def test_cutmix_labels_weigh_the_pixels_pasted(n):
    images, labels = constant_batch()
    mixed, targets = (t.numpy() for t in augment.cut_mix(images, labels, seed(n), 1.0))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    for i in range(CLASSES):
        sources, counts = np.unique(mixed[i, ..., 0], return_counts=True)
        assert set(sources) <= set(10.0 * np.arange(1, CLASSES + 1))
        from_pixels = np.zeros(CLASSES)
        from_pixels[(sources / 10).astype(int) - 1] = counts / (16 * 20)
        np.testing.assert_allclose(targets[i], from_pixels, atol=1e-6)
        pasted = mixed[i, ..., 0] != images[i, 0, 0, 0].numpy()
        rows, cols = np.nonzero(pasted)
        if rows.size:  # one rectangle
            assert pasted[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()


def test_mixer_picks_one_of_the_two_per_batch_and_is_a_function_of_the_seed():
    images, labels = constant_batch()
    mix = augment.BatchMixer(DataConfig(mixup_alpha=0.8, cutmix_alpha=1.0))
    kinds = set()
    for n in range(12):
        mixed, _ = mix(images, labels, seed(n))
        again, _ = mix(images, labels, seed(n))
        np.testing.assert_array_equal(mixed, again)
        # MixUp makes blended values; CutMix only copies them
        copies = set(np.unique(mixed.numpy())) <= set(10.0 * np.arange(1, CLASSES + 1))
        kinds.add("cutmix" if copies else "mixup")
    assert kinds == {"cutmix", "mixup"}


def test_mix_probability_leaves_the_other_batches_alone():
    images, labels = constant_batch()
    mix = augment.BatchMixer(DataConfig(cutmix_alpha=1.0, mix_probability=0.3))
    untouched = 0
    for n in range(40):
        mixed, targets = mix(images, labels, seed(n))
        if np.array_equal(targets, labels):
            np.testing.assert_array_equal(mixed, images)
            untouched += 1
    assert 18 <= untouched <= 38  # about 70% of 40; a CutMix box may also be empty


@pytest.mark.parametrize("channels", [3, 1])
def test_rand_augment_is_a_function_of_the_seed(channels):
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (24, 24, channels)),
                        tf.float32)
    ops = augment.rand_augment_ops(9)
    run = tf.function(lambda x, s: augment.rand_augment(x, s, ops, 2))
    outputs = [run(image, seed(n)).numpy() for n in range(6)]
    for n, out in enumerate(outputs):
        assert out.shape == (24, 24, channels) and out.min() >= 0 and out.max() <= 255
        np.testing.assert_array_equal(out, run(image, seed(n)).numpy())
    assert len({out.tobytes() for out in outputs}) >= 5


def test_rand_augment_rotates_within_the_magnitude():
    """An image whose only bright spot sits 10 px right of the centre: the rotation op at
    magnitude 10 (30 degrees) moves it along a circle by at most 30 degrees."""
    image = np.zeros((41, 41, 1), np.float32)
    image[19:22, 29:32] = 255.0
    rotation = augment.rand_augment_ops(10)[3]
    angles = []
    for n in range(20):
        change = rotation.get_random_transformation(image[None], seed=augment.PositionSeeds(
            seed(n)))
        out = rotation.transform_images(tf.constant(image[None]), change).numpy()[0, ..., 0]
        y, x = np.nonzero(out > 200)
        angles.append(np.degrees(np.arctan2(y.mean() - 20, x.mean() - 20)))
    assert max(abs(a) for a in angles) <= 33 and max(abs(a) for a in angles) > 10


def stream(config, start_step=0, count=6):
    data = data_lib.load(DataConfig(source="sample", train_limit=40))
    return [(x.numpy(), y.numpy()) for x, y in pipeline.train_dataset(
        data.train, config, (32, 32, 1), ONE_HOT, 8, 3, start_step=start_step).take(count)]


def test_augmented_stream_resumes_at_the_same_batch():
    config = DataConfig(source="sample", augment="flip", randaugment_ops=2, mixup_alpha=0.8,
                        cutmix_alpha=1.0)
    full = stream(config)
    resumed = stream(config, start_step=4, count=2)  # 40 images, 5 batches: epoch 2 at 5
    for (x, y), (rx, ry) in zip(full[4:], resumed):
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    for _, y in full:
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)
        assert (y.max(axis=1) < 1.0).any()  # mixed
    plain = stream(DataConfig(source="sample", augment="flip"))
    assert not np.array_equal(plain[0][0], full[0][0])


def test_sharded_pipelines_mix_with_their_own_seeds():
    data = data_lib.load(DataConfig(source="sample", train_limit=40))
    config = DataConfig(source="sample", augment="none", mixup_alpha=0.8)
    first, second = (next(iter(pipeline.train_dataset(
        data.train, config, (32, 32, 1), ONE_HOT, 8, 3,
        shard=(2, index))))[1].numpy() for index in (0, 1))
    assert first.shape == second.shape == (4, 10)
    assert not np.allclose(first.max(axis=1), second.max(axis=1))
