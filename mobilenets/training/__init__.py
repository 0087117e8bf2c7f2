"""The training stage: `train` fits a built model (or its QAT or multi-worker twin) with
checkpoints and exact resume, and returns the final model."""

from mobilenets.training.loop import Trained, train

__all__ = ["Trained", "train"]
