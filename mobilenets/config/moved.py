"""Keys that moved: an experiment file (or a run's config.yaml) written before a key moved still
loads as it did, each old key read at its new place, one warning naming them; an old key the
chosen optimizer or schedule has no place for is ignored, as it was then, and named too.

`migrate` runs on each YAML file before it is merged over its `base:`, and on the `--set`
overrides, so that a moved key lands where a later file or override can still change it.
"""

import logging

from mobilenets.errors import UserError

log = logging.getLogger("mobilenets")

# task.<key> -> task.<task>.<key>: the keys that became a task's own.
TASK_KEYS = {**{key: "detection" for key in ("match_threshold", "focal_loss",
                                             "max_detections", "nms_iou_threshold")},
             **{key: "segmentation" for key in ("head", "output_stride", "aspp")}}

# train.<old key> -> (section, {choice: key in that choice's sub-section}): the flat optimizer
# and schedule keys that became keys of a choose-one section.
TRAIN_KEYS = {
    "momentum": ("optimizer", {"rmsprop": "momentum", "sgd": "momentum"}),
    "nesterov": ("optimizer", {"sgd": "nesterov"}),
    "rho": ("optimizer", {"rmsprop": "rho"}),
    "epsilon": ("optimizer", {"rmsprop": "epsilon", "adam": "epsilon", "adamw": "epsilon"}),
    "beta_1": ("optimizer", {"adam": "beta_1", "adamw": "beta_1"}),
    "beta_2": ("optimizer", {"adam": "beta_2", "adamw": "beta_2"}),
    "decay_rate": ("schedule", {"exponential": "decay_rate"}),
    "decay_epochs": ("schedule", {"exponential": "decay_epochs"}),
    "step_epochs": ("schedule", {"step": "epochs"}),
    "step_factor": ("schedule", {"step": "factor"}),
    "poly_power": ("schedule", {"poly": "power"}),
    "min_learning_rate": ("schedule", {"cosine": "min_learning_rate",
                                       "linear": "min_learning_rate",
                                       "poly": "min_learning_rate"}),
}
DEFAULT_TYPES = {"optimizer": "rmsprop", "schedule": "exponential"}


def migrate(layer, below=None):
    """`layer` (one file's or the overrides' nested dict) with its moved keys at their new
    places. `below` is what it is merged over, where a choose-one section's type may be set.
    One warning lists the keys moved, and those dropped: an older key that does not apply to
    the chosen optimizer or schedule was ignored then (a run directory's config.yaml holds
    every key) and is ignored now."""
    moved, dropped = _move_task_keys(layer), []
    train = layer.get("train")
    if isinstance(train, dict):
        for section in DEFAULT_TYPES:
            if isinstance(train.get(section), str):  # `optimizer: sgd` names the type
                train[section] = {"type": train[section]}
        below_train = (below or {}).get("train")
        for key in [k for k in train if k in TRAIN_KEYS]:
            value = train.pop(key)
            section, places = TRAIN_KEYS[key]
            kind = (_type(train, section) or _type(below_train, section)
                    or DEFAULT_TYPES[section])
            if value is None:  # `epsilon:` empty meant the optimizer's default
                continue
            if kind not in places:
                dropped.append(f"train.{key} (not a key of {kind})")
                continue
            node = train.setdefault(section, {})
            if not isinstance(node, dict):
                raise UserError(f"train.{section}: expected a mapping, got {node!r}")
            node.setdefault(kind, {})[places[kind]] = value
            moved.append(f"train.{key} -> train.{section}.{kind}.{places[kind]}")
    if moved or dropped:
        log.warning("config: keys of an older layout%s%s (write them at their new place)",
                    ": read at their new place " + ", ".join(moved) if moved else "",
                    "; ignored " + ", ".join(dropped) if dropped else "")
    return layer


def _type(train, section):
    node = (train or {}).get(section)
    if isinstance(node, str):
        return node
    return node.get("type") if isinstance(node, dict) else None


def _move_task_keys(layer):
    """Moves task.<key> to task.<task>.<key>; returns what it moved, as "old -> new"."""
    task, moved = layer.get("task"), []
    if not isinstance(task, dict):
        return moved
    for key in [k for k in task if k in TASK_KEYS]:
        section = TASK_KEYS[key]
        target = task.setdefault(section, {})
        if isinstance(target, dict):
            target.setdefault(key, task.pop(key))
            moved.append(f"task.{key} -> task.{section}.{key}")
    return moved
