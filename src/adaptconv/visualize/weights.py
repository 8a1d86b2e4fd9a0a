"""Which weights a picture shows: official weights only where they are already on this machine, unless asked."""

from __future__ import annotations

import os
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


def load_model(name: str, pretrained: str | None = None) -> LoadedModel:
    """Build adaptconv model ``name`` for pictures.

    ``pretrained``: ``None`` takes the official weights if they are already in torch.hub's cache, else random
    weights, and never downloads; ``"official"`` the official weights (downloaded where the authors publish a
    link); ``"none"`` random weights; anything else a checkpoint path or URL.
    """
    if name not in list_models():
        raise VisualizeError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    why = "as asked"
    if pretrained is None:
        pretrained = "official" if official_weights_file(name).is_file() else "none"
        cfg = get_pretrained_config(name)
        why = "its official weights are not in torch.hub's cache" + (
            "; --pretrained official fetches them"
            if cfg.url
            else f"; they are at {cfg.download_page}"
            if cfg.released
            else "; the authors released none"
        )
    if pretrained == "none":
        with torch.random.fork_rng(devices=[]):  # the same random pictures on every run; the caller's RNG untouched
            torch.manual_seed(0)
            model = create_model(name)
        note = f"{name} has random weights ({why}): the pictures show an untrained network"
        return LoadedModel(model.eval(), name, "random weights", note)
    source = True if pretrained == "official" else pretrained
    model = create_model(name, pretrained=source)  # CheckpointError (a ValueError) says what is wrong
    weights = "official weights" if source is True else f"weights {os.path.basename(str(pretrained))}"
    return LoadedModel(model.eval(), name, weights)
