"""Model names -> builders: `build_model`, `build_backbone`, `list_models` and their options."""

import dataclasses
import difflib
import inspect

from mobilenets.models import (
    efficientnet_lite,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    mobilenet_v4,
    mobilenext,
    shufflenet_v1,
    shufflenet_v2,
    squeezenet,
    xception,
)
from mobilenets.models.common import Common, backbone_model, classifier_model
from mobilenets.models.layers import padding_style

BUILDERS = {
    "efficientnet_lite": efficientnet_lite.build,
    "mobilenet_v1": mobilenet_v1.build,
    "mobilenet_v2": mobilenet_v2.build,
    "mobilenet_v3_large": mobilenet_v3.build_large,
    "mobilenet_v3_small": mobilenet_v3.build_small,
    "mobilenet_v4": mobilenet_v4.build,
    "mobilenext": mobilenext.build,
    "shufflenet_v1": shufflenet_v1.build,
    "shufflenet_v2": shufflenet_v2.build,
    "squeezenet": squeezenet.build,
    "xception": xception.build,
}
COMMON_OPTIONS = tuple(field.name for field in dataclasses.fields(Common))
# The common options that shape the classifier, which a backbone does not have.
CLASSIFIER_OPTIONS = ("num_classes", "include_top", "pooling", "dropout", "classifier_activation")


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


def backbone_options(name):
    """Returns every option `build_backbone(name, ...)` accepts, in a stable order."""
    return [o for o in model_options(name) if o not in CLASSIFIER_OPTIONS]


def min_input_size(name):
    """Returns the smallest height and width model `name` accepts (32 unless its family says)."""
    module = inspect.getmodule(BUILDERS[_check_name(name)])
    return getattr(module, "MIN_SIZE", 32)


def build_model(name, **options):
    """Builds model `name` (see `list_models`) as a Keras 3 Functional classifier.

    Options: the common ones (`input_shape`, `num_classes`, `include_top`, `pooling`, `dropout`,
    `classifier_activation`, `include_preprocessing`, `padding`) and the family's own
    (`alpha`, ...).
    Raises ValueError naming the valid names or options on a misspelling or bad value.
    """
    return classifier_model(*_network(name, model_options(name), options))


def build_backbone(name, **options):
    """Builds the backbone of model `name`: a Keras 3 model whose outputs are a dict of its
    named feature maps (`stride_4` ... `stride_32`, `expansion_to_<s>` for inverted-residual
    families, `last`; see `common.FeatureMaps`).

    Options: `input_shape`, `include_preprocessing` and the family's own; `output_stride`
    (8, 16 or 32) for the families that dilate (MobileNetV1, V2, V3, MobileNeXt).
    """
    if "output_stride" in options and "output_stride" not in family_options(name):
        if options["output_stride"] != 32:
            dilating = [n for n in BUILDERS if "output_stride" in family_options(n)]
            raise ValueError(f"output_stride: {name} cannot dilate its last stages (only 32); "
                             f"the families that can: {', '.join(dilating)}")
        options = {k: v for k, v in options.items() if k != "output_stride"}
    return backbone_model(_network(name, backbone_options(name), options)[1])


def check(name, options=(), valid=None):
    """Returns `name` if it is a model and every key of `options` is one of `valid` (default:
    every option `build_model` takes); else raises ValueError naming the valid names or
    options and the nearest to a misspelling. The one check of model names and options:
    building and the config both use it."""
    name = _check_name(name)
    valid = model_options(name) if valid is None else valid
    unknown = [key for key in options if key not in valid]
    if unknown:
        hints = "".join(_did_you_mean(key, valid) for key in unknown)
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for {name}{hints}; "
                         f"valid options: {', '.join(valid) or 'none'}")
    return name


def _network(name, valid, options):
    name = check(name, options, valid)
    common = Common(**{key: options[key] for key in COMMON_OPTIONS if key in options})
    family = {key: value for key, value in options.items() if key not in COMMON_OPTIONS}
    with padding_style(common.padding):
        return common, BUILDERS[name](common, **family)


def _check_name(name):
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}{_did_you_mean(name, BUILDERS)}; "
                         f"valid models: {', '.join(BUILDERS)}")
    return name


def _did_you_mean(word, choices):
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
