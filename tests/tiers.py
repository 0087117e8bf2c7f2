"""Test tiers: `pytest -m "not slow"` is the fast tier (every module, a few minutes); the
full suite adds the end-to-end runs and the per-family conversions marked here."""

import pytest

from mobilenets import list_models

# The families whose conversions and training steps stay in the fast tier: the quickest of
# the plain-conv (SqueezeNet) and depthwise (MobileNetV1) kinds.
FAST_FAMILIES = ("mobilenet_v1", "squeezenet")


def families(fast=FAST_FAMILIES):
    """`list_models()` as parameters, marked slow except the `fast` ones."""
    return [name if name in fast else pytest.param(name, marks=pytest.mark.slow)
            for name in list_models()]
