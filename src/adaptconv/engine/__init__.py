"""Training and evaluation: loops, checkpoints, distributed set-up, logging, metrics."""

from ..data import DataError
from ..models.checkpoint import CheckpointError
from .config import RECIPES, TrainConfig, resolve_config
from .trainer import NonFiniteLossError, train
from .validate import validate

#: errors that are the user's to fix: the command line prints their message alone, without a traceback
UserError = (DataError, CheckpointError, NonFiniteLossError)

__all__ = ["RECIPES", "CheckpointError", "DataError", "NonFiniteLossError", "TrainConfig", "UserError",
           "resolve_config", "train", "validate"]  # fmt: skip
