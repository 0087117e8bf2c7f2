"""Model names -> builders: `build_model`, `list_models` and the catalogue of paper variants."""

import dataclasses
import difflib
import inspect

from mobilenets.models import (mobilenet_v1, mobilenet_v2, mobilenet_v3, mobilenext,
                               shufflenet_v1, shufflenet_v2, squeezenet, xception)
from mobilenets.models.common import Common

BUILDERS = {
    "mobilenet_v1": mobilenet_v1.build,
    "mobilenet_v2": mobilenet_v2.build,
    "mobilenet_v3_large": mobilenet_v3.build_large,
    "mobilenet_v3_small": mobilenet_v3.build_small,
    "mobilenext": mobilenext.build,
    "shufflenet_v1": shufflenet_v1.build,
    "shufflenet_v2": shufflenet_v2.build,
    "squeezenet": squeezenet.build,
    "xception": xception.build,
}
COMMON_OPTIONS = tuple(field.name for field in dataclasses.fields(Common))


def list_models():
    """Returns the names `build_model` accepts."""
    return list(BUILDERS)


def family_options(name):
    """Returns {option: default} of the options specific to model `name`."""
    parameters = inspect.signature(BUILDERS[_check_name(name)]).parameters
    return {p.name: p.default for p in parameters.values() if p.kind is p.KEYWORD_ONLY}


def model_options(name):
    """Returns every option `build_model(name, ...)` accepts, in a stable order."""
    return list(COMMON_OPTIONS) + list(family_options(name))


def min_input_size(name):
    """Returns the smallest height and width model `name` accepts (32 unless its family says)."""
    module = inspect.getmodule(BUILDERS[_check_name(name)])
    return getattr(module, "MIN_SIZE", 32)


def build_model(name, **options):
    """Builds model `name` (see `list_models`) as a Keras 3 Functional model.

    Options: the common ones (`input_shape`, `num_classes`, `include_top`, `pooling`, `dropout`,
    `classifier_activation`, `include_preprocessing`) and the family's own (`alpha`, ...).
    Raises ValueError naming the valid names or options on a misspelling or bad value.
    """
    name = _check_name(name)
    valid = model_options(name)
    unknown = [key for key in options if key not in valid]
    if unknown:
        hints = "".join(_did_you_mean(key, valid) for key in unknown)
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for {name}{hints}; "
                         f"valid options: {', '.join(valid)}")
    common = Common(**{key: options.pop(key) for key in COMMON_OPTIONS if key in options})
    return BUILDERS[name](common, **options)


def _check_name(name):
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}{_did_you_mean(name, BUILDERS)}; "
                         f"valid models: {', '.join(BUILDERS)}")
    return name


def _did_you_mean(word, choices):
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclasses.dataclass(frozen=True)
class Variant:
    """A published configuration, with the figures its paper reports (None where none)."""

    name: str
    options: dict
    top1: float | None = None  # ImageNet top-1 %, float
    paper_macs: float | None = None  # millions of multiply-adds at 224 (299 for Xception)


# Sources: ../shared/REFERENCE.md (papers, TF-slim, keras.applications); V1 widths: paper Table 6;
# ShuffleNet V2 widths: paper Table 8.
VARIANTS = (
    Variant("mobilenet_v1", {"alpha": 1.0}, 70.6, 569),
    Variant("mobilenet_v1", {"alpha": 0.75}, 68.4, 325),
    Variant("mobilenet_v1", {"alpha": 0.5}, 63.7, 149),
    Variant("mobilenet_v1", {"alpha": 0.25}, 50.6, 41),
    Variant("mobilenet_v2", {"alpha": 1.4}, 74.7, 582),
    Variant("mobilenet_v2", {"alpha": 1.0}, 72.0, 300),
    Variant("mobilenet_v2", {"alpha": 0.75}, None, 209),
    Variant("mobilenet_v2", {"alpha": 0.5}, None, 97),
    Variant("mobilenet_v2", {"alpha": 0.35}, None, 59),
    Variant("mobilenet_v3_large", {"alpha": 1.0}, 75.2, 219),
    Variant("mobilenet_v3_large", {"alpha": 0.75}, 73.3, 155),
    Variant("mobilenet_v3_large", {"minimalistic": True}, 72.3, 209),
    Variant("mobilenet_v3_small", {"alpha": 1.0}, 67.4, 56),
    Variant("mobilenet_v3_small", {"minimalistic": True}, 61.9, 65),
    Variant("mobilenext", {"alpha": 1.0}, 74.02, 300),
    Variant("mobilenext", {"alpha": 1.0, "identity_ratio": 0.5}, 74.09, None),
    Variant("mobilenext", {"alpha": 0.75}, None, 210),
    Variant("mobilenext", {"alpha": 0.5}, None, 110),
    Variant("shufflenet_v1", {"alpha": 1.0, "groups": 3}, None, 140),
    Variant("shufflenet_v1", {"alpha": 1.0, "groups": 8}, None, 140),
    Variant("shufflenet_v2", {"alpha": 0.5}, 60.3, 41),
    Variant("shufflenet_v2", {"alpha": 1.0}, 69.4, 146),
    Variant("shufflenet_v2", {"alpha": 1.5}, 72.6, 299),
    Variant("shufflenet_v2", {"alpha": 2.0}, 74.9, 591),
    Variant("squeezenet", {"version": "1.0"}, 57.5, None),
    Variant("squeezenet", {"version": "1.1"}, None, None),
    Variant("xception", {"input_shape": (299, 299, 3)}, 79.0, None),
)
