"""Knowledge distillation (Hinton et al., 2015): the model learns from a trained teacher's
predictions as well as from the labels.

    loss = (1 - w) * CE(labels, student) + w * T^2 * KL(teacher_T || student_T)

where CE is the task's cross-entropy (label smoothing included), `x_T` is softmax(logits / T),
w is `train.distill_weight` and T `train.distill_temperature` (T^2 keeps the soft term's
gradients the size of the hard term's, as the paper says). Both models output probabilities;
softmax(log p / T) equals softmax(logits / T) (log p differs from the logits by a constant per
image, which softmax ignores), so the tempered distributions are computed from them.

The teacher runs in inference mode inside the training step, on the very images the student
sees (augmented and mixed), under the same tf.distribute strategy (`attach`). Keras has no
distillation API; Keras' example subclasses the model, which would change what is saved and
checkpointed here.
"""

import logging

import keras
import tensorflow as tf

from mobilenets import artifacts, keras2
from mobilenets.data.transforms import convert_channels
from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

# The smallest float32 probability whose log is taken; log(0) is -inf. A probability this
# small tempered by T >= 1 stays below 1e-38 ** (1 / T) of the largest: its term is nil.
TINY = 1e-38


def load_teacher(path, num_classes):
    """The classifier saved at `path` (.keras), frozen; UserError if it is missing, does not
    load, or predicts another number of classes. Call it in the strategy's scope."""
    teacher = artifacts.load_model(path, option="train.teacher:")
    shape = teacher.output_shape
    if not isinstance(shape, tuple) or len(shape) != 2 or shape[-1] != num_classes:
        raise UserError(f"train.teacher: {path} outputs shape {shape}; the student predicts "
                        f"{num_classes} classes")
    if len(teacher.input_shape) != 4 or None in teacher.input_shape[1:]:
        raise UserError(f"train.teacher: {path} takes inputs of shape {teacher.input_shape}, "
                        "not images of a fixed size")
    teacher.trainable = False
    log.info("train.teacher: %s (%s, %d parameters, input %s)", path, teacher.name,
             teacher.count_params(), "x".join(map(str, teacher.input_shape[1:])))
    return teacher


def teacher_predictions(teacher, images):
    """The teacher's class probabilities for a batch of student inputs ([0, 255] pixels),
    resized (bilinear) to its input size and converted to its channels; no gradient."""
    height, width, channels = teacher.input_shape[1:]
    images = tf.cast(images, tf.float32)
    if tuple(images.shape[1:3]) != (height, width):
        images = tf.image.resize(images, (height, width))
    images = convert_channels(images, channels)
    return tf.stop_gradient(tf.cast(teacher(images, training=False), tf.float32))


def per_image_loss(labels, teacher, student, label_smoothing, temperature, weight):
    """The distillation loss of each image, from one-hot (or mixed) `labels` and the two
    models' probabilities."""
    student = tf.cast(student, tf.float32)
    hard = keras.losses.categorical_crossentropy(labels, student, label_smoothing=label_smoothing)
    return (1.0 - weight) * hard + weight * temperature**2 * soft_term(teacher, student,
                                                                       temperature)


def soft_term(teacher, student, temperature):
    """KL(teacher_T || student_T) of each image, from the two models' probabilities."""
    teacher = tf.cast(teacher, tf.float32)
    teacher_log = tf.nn.log_softmax(tf.math.log(tf.maximum(teacher, TINY)) / temperature)
    student_log = tf.nn.log_softmax(tf.math.log(tf.maximum(student, TINY)) / temperature)
    return tf.reduce_sum(tf.exp(teacher_log) * (teacher_log - student_log), axis=-1)


def attach(model, teacher, train_config):
    """Makes `model`'s training and validation steps (Keras 3 or tf_keras) add the teacher's
    term to its compiled loss (the task's cross-entropy, plus regularization):

        loss = compiled + mean(per_image_loss - cross-entropy)

    which is the distillation loss with the compiled cross-entropy standing for its hard term
    (the same Keras function), scaled per replica as Keras scales the compiled loss (as a
    regularization term in tf_keras, whose logged loss is its compiled loss's). The model stays
    compiled with the task's loss, so the files saved from it load anywhere.

    Keras calls `model.compute_loss(x, y, y_pred, ...)` from its steps; this instance's method
    takes the class's place."""
    smoothing = train_config.label_smoothing
    temperature, weight = train_config.distill_temperature, train_config.distill_weight
    keras3 = keras2.api(model) is keras
    original = type(model).compute_loss

    def compute_loss(x=None, y=None, y_pred=None, sample_weight=None, **kwargs):
        labels, student = tf.cast(y, tf.float32), tf.cast(y_pred, tf.float32)
        hard = keras.losses.categorical_crossentropy(labels, student,
                                                     label_smoothing=smoothing)
        mixed = per_image_loss(labels, teacher_predictions(teacher, x), student, smoothing,
                               temperature, weight)
        extra = tf.reduce_mean(mixed - hard)
        if keras3:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            return original(model, x, y, y_pred, sample_weight, **kwargs) + extra / replicas
        return model.compiled_loss(y, y_pred, sample_weight,
                                   regularization_losses=[*model.losses, extra])

    model.compute_loss = compute_loss
