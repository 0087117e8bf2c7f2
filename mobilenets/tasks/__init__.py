"""Tasks: what a model is trained to do, on top of a backbone.

Each task is a `base.Task` subclass (its contract: tasks/base.py), registered here by name; the
stages get the configured one with `get(config.task)` and call its members, never asking which
task it is. Another program adds a task with `register`.
"""

from mobilenets.tasks.base import Task
from mobilenets.tasks.classification import Classification
from mobilenets.tasks.detection.task import Detection
from mobilenets.tasks.segmentation.task import Segmentation

__all__ = ["TASKS", "Task", "describe", "get", "recognize", "register"]

TASKS = {}


def register(task):
    """Makes the `Task` subclass `task` available as `task.name: <its name>` (its config
    section, if it has one, as `task.<its name>.*`); returns it (usable as a decorator)."""
    if not (isinstance(task, type) and issubclass(task, Task)):
        raise TypeError(f"{task!r} is not a subclass of mobilenets.tasks.Task")
    TASKS[task.name] = task
    return task


for _task in (Classification, Detection, Segmentation):
    register(_task)


def get(config):
    """The task a task section names, with its own section (or a task's name: its defaults)."""
    name = config if isinstance(config, str) else config.name
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    section = None if isinstance(config, str) else getattr(config, name, None)
    return TASKS[name](section)


def recognize(input_shape, output_shapes):
    """The task whose models have these shapes (`Task.recognizes`), for a model file without
    its experiment; None if none."""
    for task in TASKS.values():
        if task.recognizes(input_shape, output_shapes):
            return task()
    return None


def describe(result):
    """A `predict` result in a line for the CLI, by the task that made it."""
    for task in TASKS.values():
        if task.result_key in result:
            return task().describe(result)
    return ""
