"""Argument types the commands share: numbers checked against their range at parse time (one line, exit 2, as
argparse does for any bad value), and ``--pretrained``, which means the same in every command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ..engine.limits import LIMITS, Limit

__all__ = ["PRETRAINED_HELP", "add_pretrained_argument", "checked", "pretrained_value"]

PRETRAINED_HELP = (
    "weights to start from: 'official' (or the bare flag) the official ImageNet weights, or a checkpoint file or "
    "URL; left out: random weights"
)


def checked(name: str, limit: Limit | None = None) -> Callable[[str], int | float]:
    """An argparse ``type`` for the setting ``name`` (or ``limit``): an int or a float in its range."""
    limit = limit or LIMITS[name]

    def parse(text: str) -> int | float:
        try:
            value = int(text) if limit.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {limit.describe()}, got {text!r}") from None
        problem = limit.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = "integer" if limit.integer else "number"  # argparse names the type in some messages
    return parse


def pretrained_value(text: str) -> bool | str | None:
    """``official`` -> ``True`` (the official weights); ``none`` -> ``None`` (the older spelling of leaving the
    flag out, deprecated); anything else is a checkpoint path or URL."""
    if text == "official":
        return True
    if text == "none":
        print("adaptconv: warning: '--pretrained none' is deprecated and will be removed: leave --pretrained out for "
              "random weights", file=sys.stderr)  # fmt: skip
        return None
    return text


def add_pretrained_argument(p: argparse.ArgumentParser) -> None:
    """``--pretrained [official|PATH|URL]``, the same in ``train``, ``validate``, ``export`` and ``visualize``."""
    p.add_argument("--pretrained", nargs="?", const=True, default=None, type=pretrained_value,
                   metavar="official|PATH|URL", help=PRETRAINED_HELP)  # fmt: skip
