"""Which adaptconv model a file of plain weights belongs to, from its keys and shapes alone."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..models import get_pretrained_config, list_models, official_key_map
from ..models.checkpoint import CheckpointError, fit_state_dict
from .config import TrainConfig
from .setup import STAGE_WIDTHS, build_model

__all__ = ["ModelGuess", "describe", "infer_model", "with_guess"]

#: the output channels of a stage are 4x its width in every SCNet and RedNet (bottleneck blocks)
EXPANSION = 4


@dataclass(frozen=True)
class ModelGuess:
    """An architecture that ``state`` fits exactly: ``create_model(arch, ...)`` at ``width``."""

    arch: str
    width: float
    num_classes: int
    in_chans: int


def _find(state: dict[str, Tensor], keys: set[str]) -> Tensor | None:
    return next((state[k] for k in keys if k in state), None)


def infer_model(state: dict[str, Tensor]) -> list[ModelGuess]:
    """Every adaptconv model (at a stage width ``--width`` can give) whose state_dict ``state`` fits exactly, in
    either our key names or the official ones. The classifier gives the number of classes and the width, the
    first convolution the input channels."""
    guesses = []
    for arch in list_models():
        config = get_pretrained_config(arch)
        with torch.device("meta"):
            probe = build_model(TrainConfig(arch=arch, width=1.0, pretrained=False), 1, 3)
        names = official_key_map(probe)
        classifier = _find(state, {f"{config.classifier}.weight", names[f"{config.classifier}.weight"]})
        first = _find(state, {f"{config.first_conv}.weight", names[f"{config.first_conv}.weight"]})
        if classifier is None or first is None or classifier.ndim != 2 or first.ndim != 4:
            continue
        width = classifier.shape[1] / (EXPANSION * STAGE_WIDTHS[-1])
        cfg = TrainConfig(arch=arch, width=width, pretrained=False)
        try:
            with torch.device("meta"):
                model = build_model(cfg, classifier.shape[0], first.shape[1])
            fit_state_dict(model, state)
        except (CheckpointError, TypeError, ValueError, RuntimeError):
            continue
        guesses.append(ModelGuess(arch, width, classifier.shape[0], first.shape[1]))
    return guesses


def describe(guess: ModelGuess) -> str:
    """The command-line flags that build ``guess``."""
    width = f" --width {guess.width:g}" if guess.width != 1 else ""
    return f"-a {guess.arch}{width} --num-classes {guess.num_classes}"


def with_guess(cfg: TrainConfig, guess: ModelGuess) -> TrainConfig:
    """``cfg`` building ``guess``'s model."""
    return replace(cfg, arch=guess.arch, width=guess.width, num_classes=guess.num_classes)
