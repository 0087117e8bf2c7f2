"""Every error type of the project, and the exit status each one ends a command with.

Library functions raise their own, specific errors (`ValueError` for a bad argument, the classes
below for what they detect); the stage boundary (`experiment`, the commands) turns the ones a
user can fix into `UserError`. `cli` maps each class to an exit status: 2 for a user error,
1 for a run that failed, 130 for one stopped by Ctrl-C (SIGINT), 143 by SIGTERM.
"""


class UserError(Exception):
    """A clear, one-line message naming the field or file at fault; shown without traceback."""


class TrainingDiverged(Exception):
    """The loss became NaN or infinite; the message says at which step and what to try."""


class ExportCheckFailed(Exception):
    """An exported file lost more accuracy than `export.max_drop` allows."""


class WriteError(OSError):
    """A file could not be written (full disk, read-only folder); `filename` is the target."""


class ExportOptionError(ValueError):
    """An export option that does not fit the model (a QAT model's int8 output type, say);
    its message starts with the config key at fault."""


class CheckpointMismatch(Exception):
    """The run directory's checkpoints belong to another model."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the command; `signal_number` says which. The message says
    where training stopped (its checkpoint) when it was training."""

    def __init__(self, message, signal_number):
        super().__init__(message)
        self.signal_number = signal_number
