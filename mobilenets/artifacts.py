"""Model files: loading a `.keras` model or a QAT run's `.h5`, saving the final model, and
starting a model from another one's weights (`model.init_from`). `.tflite` files are read by
`tflite.runner`.

Errors name the option or key that gave the path (`--model`, `model.init_from`).
"""

import dataclasses
import logging
import pathlib

import keras

from mobilenets import files
from mobilenets.errors import UserError

# Imported for its registration with Keras of the custom layers a saved model may name
# (ChannelSplit): a model file loads even where nothing else built a model.
from mobilenets.models import layers as model_layers

log = logging.getLogger("mobilenets")

KERAS_SUFFIXES = (".keras", ".h5")


FLOAT, QAT = "float", "qat"


@dataclasses.dataclass(frozen=True)
class Artifact:
    """A trained model and its kind, decided once, where the model is made (training) or
    loaded (its file's format), and carried to export: "float", a Keras 3 model; "qat", a
    quantization-aware tf_keras model. (A multi-worker run trains a tf_keras twin, but copies
    it back into its Keras 3 model before the model leaves training: a float artifact.)"""

    model: object
    kind: str = FLOAT

    @property
    def file_name(self):
        """The run directory's name of the final model of this kind."""
        return "model_qat.h5" if self.kind == QAT else "model.keras"

    def export_names(self, modes):
        """The files it exports for `export.modes`: a QAT model's int8 file only."""
        return ["qat_int8"] if self.kind == QAT else list(modes)


def load(path, option="--model"):
    """The `Artifact` of a `.keras` model, or of the `.h5` tf_keras model of a QAT run;
    UserError if it cannot be loaded (`option` names the flag or key that gave the path)."""
    path = pathlib.Path(path)
    if path.suffix not in KERAS_SUFFIXES:
        raise UserError(f"{option} {path}: expected a .keras file (or the .h5 of a QAT run)")
    if not path.is_file():
        raise UserError(f"{option} {path} not found")
    try:
        if path.suffix == ".h5":
            from mobilenets.quantization import qat

            return Artifact(qat.load_model(path), QAT)
        return Artifact(keras.models.load_model(path, compile=False))
    except Exception as error:  # noqa: BLE001 - unreadable or foreign file
        raise UserError(f"{option} {path}: cannot load it as a Keras model ({error})") from None


def load_model(path, option="--model"):
    """The model of a `.keras` file, or of a QAT run's `.h5` (`load`'s, without its kind)."""
    return load(path, option).model


def save(model, path):
    """Saves `model` at `path` (not atomically: wrap it in `files.atomic_path`): a Keras 3 model
    as `.keras` that plain Keras loads (`portable`), a QAT run's tf_keras model as `.h5`."""
    if pathlib.Path(path).suffix == ".h5":
        from mobilenets.quantization import qat

        qat.save(model, path)
    else:
        portable(model).save(path)


def portable(model):
    """`model` as plain Keras loads it, `keras.saving.load_model` without this package: not
    compiled (a compiled model's file names its optimizer and our learning-rate schedule), and
    with its FusedBatchNormalization layers as Keras' BatchNormalization, which holds the same
    weights and computes the same inference (only the training pass differs). Shares no
    variables with `model` when it had to convert a layer, else its layers."""
    fused = model_layers.FusedBatchNormalization

    def plain(layer):
        if type(layer) is fused:
            return keras.layers.BatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    uncompiled = keras.Model(model.input, model.output, name=model.name)  # the same layers
    if not any(type(layer) is fused for layer in _all_layers(model)):
        return uncompiled
    copy = keras.models.clone_model(uncompiled, clone_function=plain, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def save_final(artifact, folder):
    """Writes the final model of a run (an `Artifact`) atomically: `model.keras`, or a QAT
    run's tf_keras `model_qat.h5`. Returns its path."""
    path = pathlib.Path(folder) / artifact.file_name
    with files.atomic_path(path) as tmp:
        save(artifact.model, tmp)
    return path


def load_weights_from(model, path, option="model.init_from"):
    """Copies the weights of the `.keras` file at `path` into `model`, layer by layer (by name).

    A classifier of another size is left as initialized (fine-tuning to new classes).
    """
    if not pathlib.Path(path).is_file():
        raise UserError(f"{option}: {path} not found")
    try:
        source = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - any unreadable file is a user error here
        raise UserError(f"{option}: cannot load {path} as a Keras model ({error})") from None
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    ours = [layer for layer in model.layers if layer.weights]
    missing = [layer.name for layer in ours if layer.name not in theirs]
    mismatched = [layer.name for layer in ours if layer.name in theirs and
                  [w.shape for w in layer.weights] != [w.shape for w in theirs[layer.name].weights]]
    if missing or [n for n in mismatched if n != "logits"]:
        culprit = (missing or mismatched)[0]
        raise UserError(f"{option}: {path} ({source.name}) does not match {model.name}: "
                        f"layer {culprit!r} is {'missing' if missing else 'of another shape'}")
    for layer in ours:
        if layer.name not in mismatched:
            layer.set_weights(theirs[layer.name].get_weights())
    if mismatched:
        log.info("%s: new classifier (%s classes)", option, model.output_shape[-1])
