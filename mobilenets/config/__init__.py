"""The experiment config: `load` a YAML file (with `base:` includes and `--set` overrides) into a
checked `Config`.

- `schema.py`: the sections and their keys, each declared once with its default, meaning and
  range; the optimizer and the schedule are choose-one sections.
- `loading.py`: YAML files, `base:`, `--set`, building and type-checking the dataclasses.
- `moved.py`: keys that moved, read at their new place from older files with a warning.
- `rules.py`: what one section requires of another (model names and options are the model
  registry's to check, a task's needs the task's).
"""

from mobilenets.config.loading import (
    MAX_FILE_BYTES,
    apply_override,
    dump,
    fields,
    from_dict,
    load,
    merge,
    read,
    section_class,
    to_dict,
)
from mobilenets.config.schema import (
    PILLOW_PIXEL_BOUND,
    Config,
    DataConfig,
    ExportConfig,
    ModelConfig,
    OptimizerConfig,
    QatConfig,
    RuntimeConfig,
    ScheduleConfig,
    TaskConfig,
    TrainConfig,
    chosen,
    task_config_class,
)
from mobilenets.schema import FRACTION, NON_NEGATIVE, POSITIVE, SEED, Range, option

__all__ = [
    "FRACTION", "MAX_FILE_BYTES", "NON_NEGATIVE", "PILLOW_PIXEL_BOUND", "POSITIVE", "SEED",
    "Config", "DataConfig", "ExportConfig", "ModelConfig", "OptimizerConfig", "QatConfig",
    "Range", "RuntimeConfig", "ScheduleConfig", "TaskConfig", "TrainConfig", "apply_override",
    "chosen", "dump", "fields", "from_dict", "load", "merge", "option", "read",
    "section_class", "task_config_class", "to_dict",
]
