"""mobilenets: train MobileNets and their lightweight cousins, ship them to phones as TFLite."""

from mobilenets.models.registry import build_model, list_models
from mobilenets.profile import profile

__version__ = "0.1.0"
__all__ = ["build_model", "list_models", "profile"]
