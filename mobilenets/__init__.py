"""mobilenets: train MobileNets and their lightweight cousins, ship them to phones as TFLite.

The public functions are imported on first use, so that `import mobilenets` and
`mobilenets.build_model(...)` load Keras only, not the training, export or QAT stages (tfmot and
tf_keras).
"""

import importlib

from mobilenets import console
from mobilenets.version import __version__

# TensorFlow's C++ info lines drown the training log; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
# This must happen before TensorFlow is first imported.
console.default_tensorflow_level()

_PUBLIC = {
    "build_model": "mobilenets.models.registry",
    "build_backbone": "mobilenets.models.registry",
    "list_models": "mobilenets.models.registry",
    "profile": "mobilenets.models.profile",
    "load_model": "mobilenets.artifacts",
    "export_tflite": "mobilenets.export.convert",
    "train": "mobilenets.experiment",
    "evaluate": "mobilenets.evaluation",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mobilenets' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
