"""Training and evaluation: loops, checkpoints, distributed set-up, logging, metrics."""

from ..data import DataError
from ..models.checkpoint import CheckpointError
from .config import RECIPES, ConfigError, TrainConfig, resolve_config
from .trainer import NonFiniteLossError, train
from .validate import validate

#: errors that are the user's to fix: the command line prints their message alone, without a traceback
UserError = (DataError, CheckpointError, ConfigError, NonFiniteLossError)

__all__ = ["RECIPES", "CheckpointError", "ConfigError", "DataError", "NonFiniteLossError", "TrainConfig", "UserError",
           "resolve_config", "train", "validate"]  # fmt: skip
