"""Creating models by name. All adaptconv models are registered in timm's registry on import."""

from __future__ import annotations

import timm
import torch.nn as nn

from . import rednet, scnet  # noqa: F401  (registers the models with timm)
from ._builder import STAGE_INDICES, feature_wrapper
from .pretrained import PRETRAINED
from .stems import check_stem, small_input_stem

__all__ = ["create_model", "list_models"]


def list_models(pattern: str = "*") -> list[str]:
    """Names of the adaptconv models matching a shell-style ``pattern``, e.g. ``'rednet*'``."""
    from fnmatch import fnmatch

    return [name for name in PRETRAINED if fnmatch(name, pattern)]


def create_model(name: str, pretrained=False, stem: str = "imagenet", **kwargs) -> nn.Module:
    """Create a model by name, as ``timm.create_model`` (which also knows our models after import).

    Args:
        name: an adaptconv model (``list_models()``) or any timm model, e.g. the ``resnet50`` baseline.
        pretrained: False, True (official weights), a checkpoint path or URL, or a state_dict.
        stem: ``"imagenet"`` (the model's own) or ``"cifar"``: the small-input stem (``models.stems``) for our
            models and for timm's ResNets alike, so that baselines are built the same way.
        **kwargs: ``num_classes``, ``in_chans``, ``features_only``, ``out_indices``, ``drop_path_rate``, ...
    """
    if name in PRETRAINED or check_stem(stem) == "imagenet":
        if stem != "imagenet":
            kwargs["stem"] = stem
        return timm.create_model(name, pretrained=pretrained, **kwargs)
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", STAGE_INDICES)
    feature_cls = kwargs.pop("feature_cls", "list")
    model = small_input_stem(timm.create_model(name, pretrained=pretrained, **kwargs))
    return feature_wrapper(model, out_indices, feature_cls) if features_only else model
