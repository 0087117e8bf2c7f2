"""The optimizer, learning-rate schedule and weight decay of the `train` config section."""

import dataclasses
import math

import keras
from keras import ops

from mobilenets import keras2
from mobilenets.config import chosen


@keras.saving.register_keras_serializable(package="mobilenets")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak`, then `kind` decay, as a function of the step.

    exponential: peak * decay_rate ** floor(epochs / decay_epochs) (the V2 paper: x0.98 per
    epoch); cosine, linear (ShuffleNet), or poly (DeepLab: (1 - progress) ** `power`), down to
    `minimum` at `total_steps`; step:
    x `step_factor` at each of `step_epochs`; constant. (Keras' own schedules offer warmup only
    for cosine.) With `restart_step`, the steps before it are a schedule of their own (ending
    there) and the steps from it another (warmup again, ending at `total_steps`): fine-tuning's
    warm restart when the backbone unfreezes.
    """

    def __init__(self, peak, kind, steps_per_epoch, total_steps, warmup_steps=0,
                 decay_rate=0.98, decay_epochs=1.0, step_epochs=(), step_factor=0.1, minimum=0.0,
                 restart_step=0, power=0.9):
        self.peak, self.kind = float(peak), kind
        self.steps_per_epoch, self.total_steps = int(steps_per_epoch), int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay_rate, self.decay_epochs = float(decay_rate), float(decay_epochs)
        self.step_epochs, self.step_factor = [float(e) for e in step_epochs], float(step_factor)
        self.minimum = float(minimum)
        self.restart_step = int(restart_step)
        self.power = float(power)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if not self.restart_step:
            return self._rate(step, self.total_steps)
        restart = float(self.restart_step)
        return ops.where(step < restart, self._rate(step, restart),
                         self._rate(step - restart, self.total_steps - restart))

    def _rate(self, step, total_steps):
        after = ops.maximum(step - self.warmup_steps, 0.0)
        if self.kind == "exponential":
            epochs = ops.floor(after / (self.steps_per_epoch * self.decay_epochs))
            rate = self.peak * ops.power(self.decay_rate, epochs)
        elif self.kind == "cosine":
            progress = ops.clip(after / max(1, total_steps - self.warmup_steps), 0.0, 1.0)
            rate = self.minimum + (self.peak - self.minimum) * 0.5 * (
                1.0 + ops.cos(math.pi * progress))
        elif self.kind in ("linear", "poly"):
            progress = ops.clip(after / max(1, total_steps - self.warmup_steps), 0.0, 1.0)
            left = 1.0 - progress if self.kind == "linear" else ops.power(1.0 - progress,
                                                                          self.power)
            rate = self.minimum + (self.peak - self.minimum) * left
        elif self.kind == "step":
            epoch = step / self.steps_per_epoch
            passed = sum(ops.cast(epoch >= e, "float32") for e in self.step_epochs)
            rate = self.peak * ops.power(self.step_factor, passed)
        else:
            rate = ops.convert_to_tensor(self.peak)
        if self.warmup_steps:
            rate = ops.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, rate)
        return rate

    def get_config(self):
        return dict(peak=self.peak, kind=self.kind, steps_per_epoch=self.steps_per_epoch,
                    total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                    decay_rate=self.decay_rate, decay_epochs=self.decay_epochs,
                    step_epochs=self.step_epochs, step_factor=self.step_factor,
                    minimum=self.minimum, restart_step=self.restart_step, power=self.power)


# train.optimizer.type -> the Keras class, whose arguments are the keys of its sub-section.
OPTIMIZERS = {"rmsprop": "RMSprop", "sgd": "SGD", "adam": "Adam", "adamw": "AdamW"}


def make_optimizer(train, steps_per_epoch, model, backbone=()):
    """The optimizer of the `train` section, in `model`'s library (keras, or tf_keras for a
    twin: `keras2.api`); applies L2 weight decay to `model` if asked. `backbone` (layer names)
    takes `train.backbone_lr_multiplier` times the learning rate (Keras 3 only)."""
    k = keras2.api(model)
    rate = train.learning_rate
    if train.base_batch_size:
        rate *= train.batch_size / train.base_batch_size
    kind = train.schedule
    schedule = keras2.schedule(LearningRate(
        rate, kind.type, steps_per_epoch, steps_per_epoch * train.epochs,
        warmup_steps=int(train.warmup_epochs * steps_per_epoch),
        decay_rate=kind.exponential.decay_rate, decay_epochs=kind.exponential.decay_epochs,
        step_epochs=kind.step.epochs, step_factor=kind.step.factor,
        minimum=getattr(chosen(kind), "min_learning_rate", 0.0), power=kind.poly.power,
        restart_step=steps_per_epoch * train.freeze_backbone_epochs if train.restart_schedule
        else 0), model)
    decoupled = train.weight_decay_mode == "decoupled" and train.weight_decay > 0
    if train.weight_decay_mode == "l2" and train.weight_decay > 0:
        # The paper's weight decay w <- w - lr * wd * w is the gradient of wd / 2 * |w|^2
        # (TF-slim's l2_regularizer(wd)); Keras' L2(l) adds l * |w|^2.
        keras2.add_l2(model, train.weight_decay / 2)
    common = dict(learning_rate=schedule, use_ema=train.ema_decay > 0,
                  ema_momentum=train.ema_decay or 0.99,
                  global_clipnorm=train.clip_norm or None)
    name, keys = train.optimizer.type, dataclasses.asdict(chosen(train.optimizer))
    if name == "adamw":
        keys["weight_decay"] = train.weight_decay if decoupled else 0.0
    optimizer = getattr(k.optimizers, OPTIMIZERS[name])(**keys, **common)
    if decoupled:
        if name != "adamw":
            optimizer.weight_decay = train.weight_decay
        keep = {id(kernel) for kernel in keras2.decayed_weights(model)}
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if id(v) not in keep])
    if train.backbone_lr_multiplier != 1.0:
        from mobilenets.compat import with_learning_rate_multipliers

        optimizer.__class__ = with_learning_rate_multipliers(type(optimizer))
        optimizer.multipliers = {v.path: train.backbone_lr_multiplier for layer in model.layers
                                 if layer.name in backbone for v in layer.trainable_weights}
    return optimizer

