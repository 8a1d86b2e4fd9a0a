"""Training and evaluation: loops, checkpoints, distributed set-up, logging, metrics.

Names load on first use (:mod:`adaptconv.lazy`): the command line parses its flags without importing the models.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from ..data import DataError
    from ..models.checkpoint import CheckpointError
    from .config import RECIPES, ConfigError, TrainConfig, resolve_config
    from .trainer import NonFiniteLossError, train
    from .validation import validate

__all__ = ["RECIPES", "CheckpointError", "ConfigError", "DataError", "NonFiniteLossError", "TrainConfig", "UserError",
           "resolve_config", "train", "validate", "user_errors"]  # fmt: skip

_MODULES = {
    "..data": ["DataError"],
    "..models.checkpoint": ["CheckpointError"],
    ".config": ["RECIPES", "ConfigError", "TrainConfig", "resolve_config"],
    ".trainer": ["NonFiniteLossError", "train"],
    ".validation": ["validate"],
    ".errors": ["UserError", "user_errors"],
}
__getattr__, __dir__ = lazy_exports(__name__, {name: module for module, names in _MODULES.items() for name in names})
