"""mobilenets: train MobileNets and their lightweight cousins, ship them to phones as TFLite."""

import os

# TensorFlow's C++ info lines drown the training log; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
# This must happen before TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mobilenets.evaluate import evaluate
from mobilenets.export import export_tflite
from mobilenets.models.registry import build_model, list_models
from mobilenets.profile import profile
from mobilenets.training import train
from mobilenets.version import __version__

__all__ = ["__version__", "build_model", "evaluate", "export_tflite", "list_models", "profile",
           "train"]
