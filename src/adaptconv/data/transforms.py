"""Training and evaluation transforms (torchvision ``transforms.v2`` on uint8 tensors).

Two families:
- ``imagenet``: the usual ImageNet transforms, as the papers use them: random-resized crop (a box of ``crop_scale`` of
  the area and an aspect ratio in :data:`CROP_RATIO`, resized to ``img_size``) and horizontal flip for training;
  resize the short side to ``img_size / crop_pct`` and centre-crop ``img_size`` for evaluation (``crop_pct=1``: the
  whole image).
- ``small``: for low-resolution data sets seen at (about) their own size, such as the embedded Fashion-MNIST
  subset: resize to ``img_size`` if needed, then a padded random crop and a horizontal flip for training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

__all__ = ["CROP_RATIO", "CROP_SCALE", "DataConfig", "build_transform"]

#: the random-resized crop's defaults (torchvision's): the box's share of the image area, its aspect ratio w/h
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


@dataclass(frozen=True)
class DataConfig:
    """How images are fed to a model."""

    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    family: str = "imagenet"  # or "small"
    crop_scale: tuple[float, float] = CROP_SCALE  # imagenet family, training: the random-resized crop's area range


def build_transform(cfg: DataConfig, train: bool) -> T.Compose:
    """uint8 (C, H, W) -> normalised float32 (C, img_size, img_size)."""
    interp = InterpolationMode(cfg.interpolation)
    size = cfg.img_size
    if cfg.family == "imagenet":
        if train:
            crop = T.RandomResizedCrop(size, cfg.crop_scale, CROP_RATIO, interpolation=interp, antialias=True)
            geometry = [crop, T.RandomHorizontalFlip()]
        else:
            resize = int(round(size / cfg.crop_pct))
            geometry = [T.Resize(resize, interpolation=interp, antialias=True), T.CenterCrop(size)]
    elif cfg.family == "small":
        geometry = [T.Resize((size, size), interpolation=interp, antialias=True)]
        if train:
            geometry += [T.RandomCrop(size, padding=max(1, size // 8)), T.RandomHorizontalFlip()]
    else:
        raise ValueError(f"unknown transform family {cfg.family!r}: use 'imagenet' or 'small'")
    return T.Compose([*geometry, T.ToDtype(torch.float32, scale=True), T.Normalize(cfg.mean, cfg.std)])
