"""Knowledge distillation: the loss is the stated mix of the hard and soft terms, the teacher
sees the student's images at its own size and channels, bad teachers are named."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mobilenets import build_model
from mobilenets.config import Config
from mobilenets.errors import UserError
from mobilenets.tasks.classification import Classification
from mobilenets.training import distillation
from mobilenets.training.loop import compile_model


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def hand_loss(labels, student, teacher, smoothing, temperature, weight):
    """The formula in numpy, float64, from probabilities."""
    classes = labels.shape[-1]
    smoothed = labels * (1 - smoothing) + smoothing / classes
    hard = -(smoothed * np.log(student)).sum(axis=-1)
    t = softmax(np.log(teacher) / temperature)
    s = softmax(np.log(student) / temperature)
    soft = (t * (np.log(t) - np.log(s))).sum(axis=-1)
    return (1 - weight) * hard + weight * temperature**2 * soft


def test_loss_on_a_known_case():
    labels = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    student = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    teacher = np.array([[0.7, 0.2, 0.1], [0.2, 0.2, 0.6]])
    got = distillation.per_image_loss(tf.constant(labels, tf.float32), tf.constant(teacher),
                                      tf.constant(student, tf.float32), 0.0, 1.0, 0.5).numpy()
    # T = 1, no smoothing: 0.5 * -log p_label + 0.5 * KL, written out for the first image
    kl = 0.7 * np.log(0.7 / 0.5) + 0.2 * np.log(0.2 / 0.3) + 0.1 * np.log(0.1 / 0.2)
    assert got[0] == pytest.approx(0.5 * -np.log(0.5) + 0.5 * kl, rel=1e-5)
    np.testing.assert_allclose(got, hand_loss(labels, student, teacher, 0, 1, 0.5), rtol=1e-5)
    # the teacher agreeing with the student leaves the hard term, scaled
    same = distillation.per_image_loss(tf.constant(labels, tf.float32), tf.constant(student),
                                       tf.constant(student, tf.float32), 0.1, 4.0, 0.3).numpy()
    np.testing.assert_allclose(same, 0.7 * hand_loss(labels, student, student, 0.1, 1, 0),
                               rtol=1e-5)


def test_a_distilled_step_reports_the_hand_computed_mix(tmp_path):
    """A MobileNetV2 student (32x32 gray) and a MobileNetV1 teacher (40x40 RGB) saved to a
    .keras file: the loss of one training step equals the formula on the two models' outputs
    (the student in training mode, the teacher in inference mode on the resized RGB batch)."""
    keras.utils.set_random_seed(0)
    teacher = build_model("mobilenet_v1", alpha=0.25, input_shape=(40, 40, 3), num_classes=4,
                          include_preprocessing=True)
    teacher.save(tmp_path / "teacher.keras")
    student = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 1), num_classes=4,
                          include_preprocessing=True)
    config = Config()
    config.train.label_smoothing = 0.1
    config.train.distill_temperature = 2.0
    config.train.distill_weight = 0.7
    loaded = distillation.load_teacher(str(tmp_path / "teacher.keras"), 4)
    compile_model(student, keras.optimizers.SGD(0.0), Classification(), config, loaded)

    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 1)).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1]]
    student_out = student(x, training=True).numpy().astype(np.float64)
    rgb = tf.image.grayscale_to_rgb(tf.image.resize(x, (40, 40)))
    teacher_out = teacher(rgb, training=False).numpy().astype(np.float64)
    logs = student.train_on_batch(x, labels, return_dict=True)
    expected = hand_loss(labels, student_out, teacher_out, 0.1, 2.0, 0.7).mean()
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    plain = hand_loss(labels, student_out, teacher_out, 0.1, 1.0, 0.0).mean()
    assert abs(logs["loss"] - plain) > 1e-3  # the teacher's term counts
    assert logs["accuracy"] == pytest.approx(
        (student_out.argmax(1) == labels.argmax(1)).mean())  # metrics see the labels


def test_a_qat_student_learns_from_a_float_teacher(tmp_path):
    from mobilenets.quantization import qat

    teacher = build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3), num_classes=4,
                          include_preprocessing=True)
    teacher.save(tmp_path / "teacher.keras")
    quantized = qat.quantize(build_model("mobilenet_v2", alpha=0.35, input_shape=(32, 32, 3),
                                         num_classes=4, include_preprocessing=True))
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    quantized(x, training=True)  # ranges from tfmot's [-6, 6] to the data's...
    # ...then fixed, as QAT's last phase runs: the model computes alike at every call
    student = qat.fitted(quantized, ranges_frozen=True)
    config = Config()
    config.train.distill_weight = 1.0  # the teacher's term only
    loaded = distillation.load_teacher(str(tmp_path / "teacher.keras"), 4)
    import tf_keras

    compile_model(student, tf_keras.optimizers.SGD(0.0), Classification(), config, loaded)
    labels = np.eye(4, dtype=np.float32)
    student_out = student(x, training=True).numpy().astype(np.float64)
    teacher_out = teacher(x, training=False).numpy().astype(np.float64)
    loss = student.train_on_batch(x, labels, return_dict=True)["loss"]
    assert loss == pytest.approx(hand_loss(labels, student_out, teacher_out, 0.0, 1.0, 1.0).mean(),
                                 rel=1e-4)


def test_bad_teachers_are_named(tmp_path):
    with pytest.raises(UserError, match=r"train.teacher: .*nothing.keras not found"):
        distillation.load_teacher(str(tmp_path / "nothing.keras"), 10)
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError,
                       match="train.teacher: .*junk.keras: cannot load it as a Keras model"):
        distillation.load_teacher(str(tmp_path / "junk.keras"), 10)
    build_model("squeezenet", input_shape=(32, 32, 1), num_classes=5).save(
        tmp_path / "five.keras")
    with pytest.raises(UserError, match=r"outputs shape \(None, 5\); the student predicts 10"):
        distillation.load_teacher(str(tmp_path / "five.keras"), 10)
