"""Which weights a picture shows: the ones asked for with ``pretrained``, else random weights (and a note)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..models import create_model, get_pretrained_config, list_models, official_weights_file
from .errors import VisualizeError

__all__ = ["LoadedModel", "load_model"]


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode, with a few words on its weights for titles; ``note`` says so where they are an
    untrained initialisation (whose pictures show the network's structure, not what a trained one sees)."""

    model: nn.Module
    name: str
    weights: str
    note: str | None = None


def _random_weights_note(name: str) -> str:
    cfg = get_pretrained_config(name)
    if official_weights_file(name).is_file():
        hint = "its official weights are on this machine: --pretrained official uses them"
    elif cfg.url:
        hint = "--pretrained official downloads its official weights"
    elif cfg.released:
        hint = f"its official weights are at {cfg.download_page}: --pretrained PATH"
    else:
        hint = "the authors released none: --pretrained PATH for weights of your own"
    return f"{name} has random weights (no --pretrained; {hint}): the pictures show an untrained network"


def load_model(name: str, pretrained: bool | str | None = None) -> LoadedModel:
    """Build adaptconv model ``name`` for pictures.

    ``pretrained``, as everywhere in adaptconv: ``None`` (or ``False``) random weights, the same on every run;
    ``True`` or ``"official"`` the official weights (downloaded where the authors publish a link); anything else a
    checkpoint path or URL. ``"none"`` is the older spelling of ``None`` (deprecated).
    """
    if name not in list_models():
        raise VisualizeError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    if pretrained == "none":
        warnings.warn("pretrained='none' is deprecated: pass None (the default) for random weights", FutureWarning,
                      stacklevel=2)  # fmt: skip
        pretrained = None
    if pretrained is None or pretrained is False:
        with torch.random.fork_rng(devices=[]):  # the same random pictures on every run; the caller's RNG untouched
            torch.manual_seed(0)
            model = create_model(name)
        return LoadedModel(model.eval(), name, "random weights", _random_weights_note(name))
    source = True if pretrained in (True, "official") else pretrained
    model = create_model(name, pretrained=source)  # CheckpointError (a ValueError) says what is wrong
    weights = "official weights" if source is True else f"weights {os.path.basename(str(pretrained))}"
    return LoadedModel(model.eval(), name, weights)
