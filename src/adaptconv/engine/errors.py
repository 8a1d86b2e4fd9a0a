"""The errors that are the user's to fix: the command line prints their whole message, without a traceback."""

from __future__ import annotations

from ..data import DataError
from ..models.checkpoint import CheckpointError
from .config import ConfigError
from .trainer import NonFiniteLossError

__all__ = ["UserError", "user_errors"]

#: errors that are the user's to fix: the command line prints their message alone, without a traceback
UserError = (DataError, CheckpointError, ConfigError, NonFiniteLossError)


def user_errors() -> list[type[BaseException]]:
    """:data:`UserError` and all their subclasses."""

    def below(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in [sub, *below(sub)]]

    return [c for base in UserError for c in [base, *below(base)]]
