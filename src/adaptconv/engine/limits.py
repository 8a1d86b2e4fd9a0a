"""The range of every numeric setting, and the command-line name of every setting: one table, which the command
line checks at parse time and :func:`.config.resolve_config` checks again for callers from Python."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["COUNT", "LIMITS", "NON_NEGATIVE_COUNT", "Limit", "flag_name"]

#: the largest float32: parameters and learning rates are float32, and a larger value overflows to infinity
FLOAT32_MAX = 3.4028234663852886e38

#: command-line spellings that are not simply ``--name-with-dashes``
_FLAGS = {
    "data": "DIR",
    "arch": "-a/--arch",
    "workers": "-j/--workers",
    "batch_size": "-b/--batch-size",
    "print_freq": "-p/--print-freq",
    "weight_decay": "--wd/--weight-decay",
    "evaluate": "-e/--evaluate",
}


def flag_name(name: str) -> str:
    """The command-line flag of the :class:`.config.TrainConfig` field ``name`` (``batch_size``:
    ``-b/--batch-size``)."""
    return _FLAGS.get(name, "--" + name.replace("_", "-"))


@dataclass(frozen=True)
class Limit:
    """A closed or open interval of allowed values; ``integer`` for counts."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        what = "an integer" if self.integer else "a finite number"
        return f"{what} {' and '.join(parts)}" if parts else what

    def problem(self, value: float) -> str | None:
        """``None`` if ``value`` is allowed, else what is wrong with it."""
        bad = (
            (self.integer and (isinstance(value, bool) or not isinstance(value, int)))
            or (isinstance(value, float) and not math.isfinite(value))
            or (self.low is not None and (value < self.low or (self.low_open and value == self.low)))
            or (self.high is not None and (value > self.high or (self.high_open and value == self.high)))
        )
        return f"must be {self.describe()}, got {value!r}" if bad else None


COUNT = Limit(low=1, integer=True)
NON_NEGATIVE_COUNT = Limit(low=0, integer=True)
_PROBABILITY = Limit(low=0, high=1)

LIMITS: dict[str, Limit] = {
    "batch_size": COUNT,
    "epochs": COUNT,
    "img_size": COUNT,
    "num_classes": COUNT,
    "print_freq": COUNT,
    "step_epochs": COUNT,
    "workers": NON_NEGATIVE_COUNT,
    "start_epoch": NON_NEGATIVE_COUNT,
    "checkpoint_every_steps": NON_NEGATIVE_COUNT,
    "lr": Limit(low=0, high=FLOAT32_MAX, low_open=True),
    "weight_decay": Limit(low=0, high=FLOAT32_MAX),
    "momentum": Limit(low=0, high=1, high_open=True),
    "label_smoothing": _PROBABILITY,
    "ema_decay": _PROBABILITY,
    "warmup_factor": _PROBABILITY,
    "mixup": Limit(low=0),
    "cutmix": Limit(low=0),
    "warmup_epochs": Limit(low=0),
    "warmup_fraction": Limit(low=0, high=1, high_open=True),
    "translate": NON_NEGATIVE_COUNT,
    "cutout": NON_NEGATIVE_COUNT,
    "crop_scale": Limit(low=0, high=1, low_open=True),  # each of the pair
    "crop_pct": Limit(low=0, high=1, low_open=True),
    "width": Limit(low=0, low_open=True),
}
