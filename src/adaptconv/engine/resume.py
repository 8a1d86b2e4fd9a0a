"""What a resumed run takes from its checkpoint, and which new flags it may accept.

A training checkpoint stores the run's resolved settings. Resuming restores every one of them; a flag given again
with the same value is fine. A flag that would change the run's exact continuation (the data, the model, the
batch size, the seed, the optimiser and its schedule, the precision) is refused with a message naming it; a flag
that does not (more epochs, how often to print and checkpoint, loader workers, logging) is accepted and said so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ConfigError, TrainConfig
from .limits import flag_name

__all__ = ["SAFE_TO_CHANGE", "resume_config"]

#: settings a resumed run may change: they do not alter what it computes
SAFE_TO_CHANGE = ("epochs", "print_freq", "workers", "log", "checkpoint_every_steps", "skip_bad_images")

#: settings that describe this launch (where and how it runs), not the run: never taken from the checkpoint
_LAUNCH = ("resume", "evaluate", "output", "checkpoint", "world_size", "rank", "dist_url", "dist_backend", "gpu",
           "multiprocessing_distributed", "nproc_per_node", "cpu")  # fmt: skip

#: settings that only choose the starting point of a new run
_START = ("pretrained", "start_epoch")


def _same(name: str, given: Any, saved: Any) -> bool:
    if name == "data" or (name == "dataset" and str(given).startswith("npz:") and str(saved).startswith("npz:")):
        strip = (lambda v: v[4:]) if name == "dataset" else (lambda v: v)
        return Path(strip(given)).resolve() == Path(strip(saved)).resolve()
    if isinstance(saved, (list, tuple)) and isinstance(given, (list, tuple)):
        return list(given) == list(saved)
    return given == saved


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={v!r}" for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value)) or "none"
    return "not set" if value is None else str(value)


def resume_config(cfg: TrainConfig, saved_args: dict[str, Any], done_epochs: int) -> tuple[TrainConfig, list[str]]:
    """``cfg`` completed from the checkpoint's ``saved_args``, and notes on the settings this launch changes.

    Raises :class:`ConfigError` naming every flag that differs from the run's and would break its continuation, or
    ``--epochs`` below the ``done_epochs`` the checkpoint has finished.
    """
    out = TrainConfig.from_dict(cfg.to_dict())
    refused, notes = [], []
    for name, saved in saved_args.items():
        if name in _LAUNCH or not hasattr(out, name):
            continue
        given = getattr(out, name)
        if given is None or (name in _START and given in (False, 0)):
            setattr(out, name, saved)
        elif _same(name, given, saved):
            continue
        elif name in SAFE_TO_CHANGE:
            notes.append(f"{flag_name(name)} {_show(given)} (the run had {_show(saved)})")
        elif name in _START:
            refused.append(f"{flag_name(name)} {_show(given)} (a resumed run continues from its own weights)")
        else:
            refused.append(f"{flag_name(name)} {_show(given)} (the run has {_show(saved)})")
    if out.epochs is not None and out.epochs < done_epochs:
        refused.append(f"--epochs {out.epochs} (the checkpoint has finished {done_epochs} epochs already)")
    if refused:
        raise ConfigError(
            f"--resume {cfg.resume}: these flags differ from the run's own settings, and a run continues exactly "
            "only with the settings it started with: " + "; ".join(refused) + ". Leave them out (the checkpoint "
            "holds every setting), or start a new run from its weights with --pretrained " + str(cfg.resume) + "."
        )
    if out.epochs is not None and out.epochs != saved_args.get("epochs"):
        notes.append("the learning-rate schedule is laid out again over the new number of epochs")
    return out, notes
