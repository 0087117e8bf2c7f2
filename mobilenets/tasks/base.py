"""The task contract: what a model is trained to do, on top of a backbone, as one class.

A task supplies everything the stages must not special-case; they call these members and never
ask which task it is. A new task subclasses `Task`, fills in the abstract members (and overrides
the defaults that do not fit), and is registered with `tasks.register`; its config section
(`Config`, a dataclass of `config.option` fields) becomes `task.<name>.*`. After TF Model
Garden's `base_task.Task`: a task owns its model, data, loss, metrics and files.
"""

import abc
from typing import ClassVar

# What the CLI prints for an image whose result has no line of its own.
NO_RESULT = "nothing found"


class Task(abc.ABC):
    """One task. Class attributes describe it; `config` is its section of the experiment
    (`task.<name>`: an instance of `Config`), its defaults without one."""

    name: ClassVar[str]  # what task.name says
    labels: ClassVar[str]  # the label kind its data holds: "classes", "objects" or "masks"
    sources: ClassVar[tuple]  # the data.source values that give such labels
    headline: ClassVar[str]  # the score export compares files by, in points
    report_keys: ClassVar[tuple]  # the scores reports and the CLI print
    result_key: ClassVar[str]  # the key of `predict`'s result that holds its findings
    monitor: ClassVar[str] = "val_loss"  # the Keras log entry that picks the best model
    monitor_mode: ClassVar[str] = "min"  # which way is better
    export_modes: ClassVar[tuple] = ("float32", "int8")  # the files it exports
    quantization_debugger: ClassVar[bool] = False  # export's per-layer error report works
    evaluates_as_clients: ClassVar[bool] = True  # evaluation preprocesses as Android's clients
    rgb_only: ClassVar[bool] = True  # its models take RGB images only (as the clients give)
    # config keys (path: value meaning "off") it cannot use yet
    unsupported: ClassVar[dict] = {"train.teacher": "", "data.randaugment_ops": 0,
                                   "data.mixup_alpha": 0.0, "data.cutmix_alpha": 0.0}
    Config: ClassVar[type | None] = None  # its config section, a dataclass; None: it has none

    def __init__(self, config=None):
        self.config = config if config is not None else (self.Config() if self.Config else None)

    # --- the model -------------------------------------------------------------------------

    @abc.abstractmethod
    def build_model(self, model_config, num_classes):
        """The Keras 3 model (backbone and head) for `model_config`, taking [0, 255] pixels.
        Raises ValueError for a bad model option."""

    def backbone_layers(self, model_config):
        """The names of the configured model's backbone layers (fine-tuning freezes them)."""
        from mobilenets.tasks.classification import backbone_layers

        return backbone_layers(model_config)

    def pretrained_part(self, model):
        """The part of `model` a classifier's pretrained weights load into."""
        return model

    def check_model(self, input_shape, output_shape, class_names):
        """An error message if a loaded model's shapes do not fit this task and data, else
        None."""
        return None

    # --- data, loss, metrics ---------------------------------------------------------------

    @abc.abstractmethod
    def examples(self, model, num_classes):
        """A `pipeline.Examples`: how the pipelines turn a split's (image, label) into training
        targets and into the truth the scores compare with."""

    @abc.abstractmethod
    def loss(self, api, train_config):
        """The loss, in `api` (keras, or tf_keras for the QAT and multi-worker twin)."""

    def metrics(self, api):
        return []

    def check_config(self, config):
        """An error message if the experiment asks of the other sections what this task
        cannot do, else None. The default checks the data source, the unsupported keys, the
        export modes and the channels."""
        if config.data.source not in self.sources:
            return (f"data.source {config.data.source} is not a source of {self.name} data; "
                    f"{self.name}'s: {', '.join(self.sources)}")
        for key, off in self.unsupported.items():
            section, name = key.split(".")
            if getattr(getattr(config, section), name) != off:
                return f"{key}: not available for {self.name} yet"
        others = set(config.export.modes) - set(self.export_modes)
        if others:
            exported = " and ".join([", ".join(self.export_modes[:-1]), self.export_modes[-1]]
                                    if len(self.export_modes) > 1 else self.export_modes)
            return (f"export.modes: {self.name} exports {exported} files, "
                    f"not {', '.join(sorted(others))}")
        if self.rgb_only and config.model.input_shape[2] != 3:
            return (f"model.input_shape: {self.name} takes RGB images (3 channels), as "
                    "Android's clients give them")
        return None

    # --- evaluation ------------------------------------------------------------------------

    @abc.abstractmethod
    def predictions(self, model):
        """A function images -> what is scored, in the form `file_outputs` gives a file's."""

    def file_outputs(self, outputs):
        """An exported file's batch of outputs in the form `predictions` gives."""
        return outputs

    @abc.abstractmethod
    def scores(self, outputs, truths, class_names):
        """A dict of the task's scores (at least `report_keys` and "images")."""

    @abc.abstractmethod
    def summary(self, metrics):
        """One line of the scores for the log."""

    @abc.abstractmethod
    def agreement(self, outputs, reference_outputs):
        """How much two models' outputs agree, in [0, 1]."""

    def plot(self, metrics, class_names, path_prefix, examples=None):
        """Writes the task's figure(s) of an evaluation under `path_prefix` (none by
        default)."""
        return None

    # --- export ----------------------------------------------------------------------------

    def served(self, model, api):
        """The model the exported files are converted from (in `api`): `model` itself."""
        del api
        return model

    def to_tflite(self, model, mode, calibration):
        """The .tflite bytes of `model` in `mode`, or None for the export stage's converter."""
        return None

    @abc.abstractmethod
    def metadata(self, content, labels, name, description, version):
        """`content` (.tflite bytes) with the metadata Android's clients read for this task."""

    # --- prediction (`mobilenets predict`) -------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def recognizes(cls, input_shape, output_shapes):
        """Whether a model of these shapes (a Keras model's outputs, or a file's) is this
        task's: how `predict` tells, for a model file without its experiment."""

    def keras_runner(self, model):
        """A function of one batch that gives what the task's exported file gives."""
        import numpy as np

        return lambda batch: np.asarray(model(batch, training=False))

    def classes_of(self, output_shapes):
        """How many classes a model of these output shapes has (None: unknown)."""
        return int(output_shapes[0][-1])

    @abc.abstractmethod
    def predict(self, outputs, labels, top, image_path, masks_dir=None):
        """`predict`'s result for one image from the model's `outputs` for it (batch of 1):
        {"image": ..., `result_key`: [...], ...}."""

    @abc.abstractmethod
    def describe(self, result):
        """`result` (of `predict`) in a line for the CLI, without the image's name."""
