"""Creating models by name. All adaptconv models are registered in timm's registry on import."""

from __future__ import annotations

import timm
import torch.nn as nn

from . import rednet, scnet  # noqa: F401  (registers the models with timm)
from .pretrained import PRETRAINED

__all__ = ["create_model", "list_models"]


def list_models(pattern: str = "*") -> list[str]:
    """Names of the adaptconv models matching a shell-style ``pattern``, e.g. ``'rednet*'``."""
    from fnmatch import fnmatch

    return [name for name in PRETRAINED if fnmatch(name, pattern)]


def create_model(name: str, pretrained=False, **kwargs) -> nn.Module:
    """Create a model by name, exactly as ``timm.create_model`` (which also knows our models after import).

    Args:
        name: an adaptconv model (``list_models()``) or any timm model, e.g. the ``resnet50`` baseline.
        pretrained: False, True (official weights), a checkpoint path or URL, or a state_dict.
        **kwargs: ``num_classes``, ``in_chans``, ``features_only``, ``out_indices``, ``drop_path_rate``, ...
    """
    return timm.create_model(name, pretrained=pretrained, **kwargs)
