"""The training configuration, and the named recipes that fill in what the command line leaves unset.

Precedence: a value given on the command line, then the recipe's, then the classic ImageNet script's default.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from .limits import LIMITS, flag_name

__all__ = ["CLASSIC", "RECIPES", "ConfigError", "TrainConfig", "check_values", "resolve_config", "usable_cpus"]


class ConfigError(ValueError):
    """A bad option or combination of options: the command line prints its message alone (it names the flag)."""


@dataclass
class TrainConfig:
    """Every setting of a training or evaluation run (``None``: not given; the recipe or default decides, or on a
    resume the run's own setting)."""

    data: str | None = None  # ImageNet-style folder
    dataset: str | None = None  # 'npz:PATH' or 'embedded'
    arch: str | None = None
    width: float | None = None  # multiplier on the stage widths (1 = the paper's model)
    model_kwargs: dict[str, Any] | None = None  # more keyword arguments of the model, e.g. fused_involution=True
    workers: int | None = None
    epochs: int | None = None
    start_epoch: int | None = None
    batch_size: int | None = None  # total over the processes of one node
    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    print_freq: int | None = None
    resume: str | None = None
    evaluate: bool = False
    pretrained: str | bool | None = None  # True or 'official': the official weights; else a path or URL
    checkpoint: str | None = None  # weights to evaluate (validate)
    world_size: int = -1
    rank: int = -1
    dist_url: str = "env://"
    dist_backend: str | None = None
    seed: int | None = None
    gpu: int | None = None
    multiprocessing_distributed: bool = False
    nproc_per_node: int | None = None  # --multiprocessing-distributed: processes of this node (None: one a GPU)
    cpu: bool = False
    amp: str | None = None  # 'bf16' | 'fp16'
    channels_last: bool | None = None
    compile: bool | None = None
    label_smoothing: float | None = None
    schedule: str | None = None  # 'step' | 'cosine' | 'linear'
    step_epochs: int | None = None
    warmup_epochs: float | None = None
    warmup_fraction: float | None = None  # the warm-up as a fraction of the epochs (where --warmup-epochs is not given)
    warmup_factor: float | None = None  # learning rate at the start of the warm-up, as a fraction of --lr
    nesterov: bool | None = None
    mixup: float | None = None
    cutmix: float | None = None
    ema: bool | None = None
    ema_decay: float | None = None
    sync_bn: bool | None = None
    output: str | None = None
    img_size: int | None = None
    num_classes: int | None = None
    log: list[str] | None = None
    recipe: str | None = None
    checkpoint_every_steps: int | None = None
    skip_bad_images: bool | None = None
    lr_reference_batch: int | None = None  # --lr is for this total batch size; scaled linearly to the real one
    stem: str | None = None  # 'imagenet' (the model's own) | 'cifar' (small-input stem, models/stems.py)
    device_data: bool | None = None  # keep the data on the training device and augment it there (DeviceLoader)
    translate: int | None = None  # device data: shift by up to this many pixels (None: a side's 1/8)
    cutout: int | None = None  # device data: side of the cutout square (0: none)
    crop_scale: tuple[float, float] | None = None  # ImageNet transforms: the random-resized crop's area range
    crop_pct: float | None = None  # ImageNet transforms: evaluation's centre crop (1: the whole image)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


#: the classic PyTorch ImageNet script's defaults (step decay /10 every 30 epochs), and ours for the additions
CLASSIC = dict(arch="resnet18", workers=4, epochs=90, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4,
               schedule="step", step_epochs=30, warmup_epochs=0, warmup_factor=0.1, label_smoothing=0.0,
               nesterov=False, width=1.0, start_epoch=0, print_freq=10, seed=0, pretrained=False,
               channels_last=False, compile=False, mixup=0.0, cutmix=0.0, ema=False, ema_decay=0.9998,
               sync_bn=False, log=[], checkpoint_every_steps=0, skip_bad_images=False, stem="imagenet",
               device_data=False, cutout=0)  # fmt: skip


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


#: what the from-scratch recipes (cifar, imagenette) share: Nesterov SGD with a linear warm-up from 0 over the first
#: 20% of the epochs then linear to 0, weight decay 5e-4, bf16, channels_last, the data on the device
_TRIANGULAR_SGD: dict[str, Any] = dict(
    momentum=0.9, nesterov=True, schedule="linear", warmup_fraction=0.2, warmup_factor=0.0, weight_decay=5e-4,
    amp="bf16", channels_last=True, device_data=True, workers=0,
)  # fmt: skip

RECIPES: dict[str, dict[str, Any]] = {
    # SCNet paper (Liu et al., CVPR 2020, Sec. 4.1): SGD, lr 0.1 for batch 256, /10 every 30 epochs, 100 epochs,
    # label smoothing 0.1.
    "scnet": dict(
        arch="scnet50",
        epochs=100,
        batch_size=256,
        lr=0.1,
        lr_reference_batch=256,
        schedule="step",
        step_epochs=30,
        label_smoothing=0.1,
        weight_decay=1e-4,
        nesterov=False,
    ),  # fmt: skip
    # RedNet paper (Li et al., CVPR 2021, Sec. 4.1) and its mmcls schedule: SGD Nesterov, lr 0.8 for batch 2048
    # scaled linearly, cosine with linear warm-up (5 epochs from 0.25 x lr), 130 epochs, label smoothing 0.1,
    # weight decay 1e-4.
    "rednet": dict(
        arch="rednet50",
        epochs=130,
        batch_size=256,
        lr=0.8,
        lr_reference_batch=2048,
        schedule="cosine",
        warmup_epochs=5,
        warmup_factor=0.25,
        label_smoothing=0.1,
        weight_decay=1e-4,
        nesterov=True,
    ),  # fmt: skip
    # Small images from scratch (CIFAR-10 at 32 px): ResNet-18 with the small-input stem, 80 epochs, Nesterov SGD,
    # batch 512, peak lr 0.2 with a linear warm-up over the first 20% of the epochs from 0, then linear to 0, weight
    # decay 5e-4, flip + 4-pixel translation + cutout 12 on the device, bf16, channels_last, no label smoothing: the
    # published small-image ResNet-18 recipe that reaches 95.3-95.6% on CIFAR-10 single view.
    "cifar": dict(
        arch="resnet18",
        stem="cifar",
        epochs=80,
        batch_size=512,
        lr=0.2,
        lr_reference_batch=512,
        label_smoothing=0.0,
        translate=4,
        cutout=12,
        **_TRIANGULAR_SGD,
    ),  # fmt: skip
    # Imagenette (10 ImageNet classes, stored at 96 px) from scratch at 128 px: ResNet-50 with the ImageNet stem,
    # 20 epochs, the cifar recipe's optimiser and triangular schedule (Nesterov SGD, peak lr 0.4 for batch 256 after
    # a linear warm-up from 0 over the first 20% of the epochs, then linear to 0, weight decay 5e-4), label
    # smoothing 0.1, bf16, channels_last; on the device a random-resized crop of 35-100% of the area (ratio 3/4 to
    # 4/3) resized to 128 px and a flip; evaluation on the whole image resized to 128 px.
    "imagenette": dict(
        arch="resnet50",
        stem="imagenet",
        img_size=128,
        epochs=20,
        batch_size=256,
        lr=0.4,
        lr_reference_batch=256,
        label_smoothing=0.1,
        crop_scale=(0.35, 1.0),
        crop_pct=1.0,
        cutout=0,
        **_TRIANGULAR_SGD,
    ),  # fmt: skip
    # The embedded default: RedNet-26 at half width on the 28x28 Fashion-MNIST subset, chosen to reach >= 80%
    # top-1 within 3 minutes on 2 CPU cores (README, "The default run"; benchmarks/default_run.py measures it).
    "embedded": dict(
        arch="rednet26",
        width=0.5,
        workers=0,
        epochs=4,
        batch_size=64,
        lr=0.05,
        schedule="cosine",
        warmup_epochs=0,
        label_smoothing=0.0,
        weight_decay=5e-5,
        nesterov=True,
    ),  # fmt: skip
}


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Fill every ``None`` from the recipe (default: 'embedded' without data, else none) and the classic defaults,
    scale the learning rate to the batch size where the recipe gives it for another, and check every number."""
    recipe = cfg.recipe
    if recipe is None and cfg.data is None and cfg.dataset in (None, "embedded"):
        recipe = "embedded"
    if recipe is not None and recipe not in RECIPES:
        raise ConfigError(f"unknown --recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    # loading workers: the classic 4, but no more than the cores this process may use (more only compete for them)
    values = {**CLASSIC, "workers": min(CLASSIC["workers"], usable_cpus()), **(RECIPES[recipe] if recipe else {})}
    out = TrainConfig.from_dict(cfg.to_dict())
    out.recipe = recipe
    lr_given = cfg.lr is not None
    for key, value in values.items():
        if getattr(out, key) is None:
            setattr(out, key, list(value) if isinstance(value, list) else value)
    if not lr_given and out.lr_reference_batch:
        out.lr = out.lr * out.batch_size / out.lr_reference_batch
    if out.warmup_fraction is not None and cfg.warmup_epochs is None:
        out.warmup_epochs = out.warmup_fraction * out.epochs
    check_values(out)
    return out


def check_values(cfg: TrainConfig) -> None:
    """A :class:`ConfigError` naming the first flag whose value is out of its range (:data:`LIMITS`)."""
    for name, limit in LIMITS.items():
        value = getattr(cfg, name)
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v is not None and limit.problem(v):
                raise ConfigError(f"{flag_name(name)}: {limit.problem(v)}")
    if cfg.crop_scale is not None and (len(cfg.crop_scale) != 2 or cfg.crop_scale[0] > cfg.crop_scale[1]):
        raise ConfigError(f"--crop-scale takes LOW HIGH with LOW <= HIGH, got {' '.join(map(str, cfg.crop_scale))}")
