"""The model's top classes on an image, named with ImageNet's class names where the model has 1000 classes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor

__all__ = ["ClassScore", "class_name", "top_classes"]


@dataclass(frozen=True)
class ClassScore:
    """One class of a prediction: its index, its name (the index as text where no names are known), its
    softmax probability."""

    index: int
    name: str
    probability: float


@cache
def _imagenet_names() -> tuple[str, ...] | None:
    # timm ships ImageNet-1k's synsets and descriptions as package data: no download. Older timm has no
    # ImageNetInfo: fall back to indices.
    try:
        from timm.data import ImageNetInfo
    except ImportError:
        return None
    info = ImageNetInfo()
    return tuple(info.index_to_description(i) for i in range(info.num_classes()))


def class_name(index: int, num_classes: int) -> str:
    """ImageNet's name of class ``index`` (e.g. 'tabby, tabby cat') for a 1000-class model, else 'class N'."""
    names = _imagenet_names() if num_classes == 1000 else None
    return names[index] if names else f"class {index}"


def top_classes(logits: Tensor, k: int = 5) -> list[ClassScore]:
    """The ``k`` most probable classes of one image's ``logits`` (num_classes,), most probable first."""
    probs = torch.softmax(logits.detach().float().flatten(), 0)
    values, indices = probs.topk(min(k, probs.numel()))
    return [
        ClassScore(int(i), class_name(int(i), probs.numel()), float(p))
        for p, i in zip(values.tolist(), indices.tolist(), strict=True)
    ]
