"""Building what a run needs from its configuration: the model, the data loaders, the precision context."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from ..data import (
    AugmentedDataset,
    DataConfig,
    DataSource,
    DeviceAugment,
    DeviceLoader,
    EpochSampler,
    ShardSampler,
    build_transform,
    collate_skipping,
    ignore_stop_signals,
)
from ..models import create_model
from .config import ConfigError, TrainConfig
from .distributed import DistContext

__all__ = ["AMP_DTYPES", "absolute_data_paths", "autocast", "build_model", "build_scheduler", "data_record",
           "eval_loader", "per_rank", "train_loader"]  # fmt: skip

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
STAGE_WIDTHS = (64, 128, 256, 512)


def build_model(cfg: TrainConfig, num_classes: int, in_chans: int) -> nn.Module:
    """``cfg.arch`` with ``num_classes`` outputs and ``in_chans`` inputs; ``cfg.width`` scales the stage widths of
    the ResNet-family models (ours and timm's); ``cfg.model_kwargs`` go to the model; ``cfg.pretrained`` loads
    weights (True: the official ones)."""
    kwargs = dict(cfg.model_kwargs or {})
    if cfg.stem not in (None, "imagenet"):
        kwargs["stem"] = cfg.stem
    if cfg.width not in (None, 1, 1.0):
        if cfg.width <= 0:
            raise ConfigError(f"--width must be positive, got {cfg.width}")
        kwargs["channels"] = tuple(max(16, int(round(c * cfg.width / 16)) * 16) for c in STAGE_WIDTHS)
    try:
        return create_model(cfg.arch, pretrained=cfg.pretrained, num_classes=num_classes, in_chans=in_chans, **kwargs)
    except TypeError as e:
        if "channels" in kwargs and "channels" in str(e):
            raise ConfigError(f"--width works with ResNet-family models only, not {cfg.arch}") from None
        unknown = [k for k in cfg.model_kwargs or {} if repr(k) in str(e)]
        if unknown:
            raise ConfigError(f"--model-kwargs: {cfg.arch} takes no argument {unknown[0]!r} ({e})") from None
        raise
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise ConfigError(f"unknown --arch {cfg.arch!r}: see 'adaptconv list' (or any timm model name)") from None
        raise


def per_rank(total: int, ctx: DistContext, what: str) -> int:
    """Split a per-node total (batch size, workers) over the processes of a node, as the classic script does."""
    if what == "workers":
        return (total + ctx.local_world_size - 1) // ctx.local_world_size
    if total % ctx.local_world_size:
        raise ConfigError(f"--batch-size {total} is the total over the {ctx.local_world_size} processes of a node "
                         "and must divide evenly between them")  # fmt: skip
    return total // ctx.local_world_size


def _device_loader(split, data_cfg: DataConfig, cfg: TrainConfig, ctx: DistContext, train: bool) -> DeviceLoader:
    """``--device-data``: the split decoded once and kept on the device, fed as the worker loader's transforms feed
    it (``data_cfg.family``). Training: the ImageNet family's random-resized crop (``--crop-scale``) to the image
    size; the small family's resize, translation (``--translate``, default a side's 1/8); then flip and cutout
    (``--cutout``). Evaluation: resized, the ImageNet family's centre ``--crop-pct`` cropped."""
    size = data_cfg.img_size
    augment = None
    if train and data_cfg.family == "imagenet":
        augment = DeviceAugment(size=size, cutout=cfg.cutout or 0, crop_scale=data_cfg.crop_scale)
    elif train:
        translate = cfg.translate if cfg.translate is not None else max(1, size // 8)
        augment = DeviceAugment(size=size, translate=translate, flip=True, cutout=cfg.cutout or 0)
    crop_pct = data_cfg.crop_pct if data_cfg.family == "imagenet" else 1.0
    return DeviceLoader(split, ctx.device, per_rank(cfg.batch_size, ctx, "batch"), data_cfg.mean, data_cfg.std,
                        augment, size=size, seed=cfg.seed, num_replicas=ctx.world_size, rank=ctx.rank,
                        channels_last=bool(cfg.channels_last), crop_pct=crop_pct)  # fmt: skip


def train_loader(source: DataSource, data_cfg: DataConfig, cfg: TrainConfig, ctx: DistContext):
    """The training loader and its :class:`EpochSampler` (seeded, resumable); with ``--device-data`` a
    :class:`DeviceLoader`, which is its own sampler."""
    if cfg.device_data:
        loader = _device_loader(source.train, data_cfg, cfg, ctx, train=True)
        return loader, loader
    ds = AugmentedDataset(source.train, build_transform(data_cfg, train=True), skip_bad=cfg.skip_bad_images)
    sampler = EpochSampler(ds, ctx.world_size, ctx.rank, seed=cfg.seed)
    workers = per_rank(cfg.workers, ctx, "workers")
    loader = DataLoader(
        ds, batch_size=per_rank(cfg.batch_size, ctx, "batch"), sampler=sampler, num_workers=workers,
        collate_fn=collate_skipping, worker_init_fn=ignore_stop_signals, drop_last=True,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(cfg.seed),
    )  # fmt: skip
    return loader, sampler


def eval_loader(source: DataSource, data_cfg: DataConfig, cfg: TrainConfig, ctx: DistContext) -> DataLoader:
    """The validation loader: every image exactly once over all ranks, in order."""
    if cfg.device_data:
        return _device_loader(source.val, data_cfg, cfg, ctx, train=False)
    ds = AugmentedDataset(source.val, build_transform(data_cfg, train=False), skip_bad=cfg.skip_bad_images)
    workers = per_rank(cfg.workers, ctx, "workers")
    return DataLoader(
        ds, batch_size=per_rank(cfg.batch_size, ctx, "batch"), sampler=ShardSampler(len(ds), ctx.world_size, ctx.rank),
        num_workers=workers, collate_fn=collate_skipping, worker_init_fn=ignore_stop_signals,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(cfg.seed),
    )  # fmt: skip


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """timm's scheduler for ``cfg.schedule``, stepped every update: 'step' (/10 every ``--step-epochs``), 'cosine',
    or 'linear' (to 0 at the last epoch), each after a linear warm-up of ``--warmup-epochs`` from ``warmup_factor``
    x lr."""
    from timm.scheduler import create_scheduler_v2

    # 'linear' is timm's polynomial decay of power 1 after the warm-up (warmup_prefix: the decay starts where the
    # warm-up ends)
    linear = cfg.schedule == "linear"
    scheduler, _ = create_scheduler_v2(
        optimizer, sched="poly" if linear else cfg.schedule,
        num_epochs=cfg.epochs - cfg.warmup_epochs if linear else cfg.epochs, decay_epochs=cfg.step_epochs,
        decay_rate=1.0 if linear else 0.1, warmup_prefix=linear, warmup_lr=cfg.lr * cfg.warmup_factor,
        warmup_epochs=cfg.warmup_epochs, min_lr=0.0, step_on_epochs=False, updates_per_epoch=steps_per_epoch,
    )  # fmt: skip
    return scheduler


def autocast(cfg: TrainConfig, device: torch.device):
    """``torch.autocast`` for ``--amp``, or nothing."""
    if cfg.amp is None:
        return contextlib.nullcontext()
    if cfg.amp not in AMP_DTYPES:
        raise ConfigError(f"--amp must be one of {', '.join(AMP_DTYPES)}, got {cfg.amp!r}")
    return torch.autocast(device.type, dtype=AMP_DTYPES[cfg.amp])


def data_record(source: DataSource, data_cfg: DataConfig) -> dict:
    """What a checkpoint keeps about its data, so that evaluation can feed the model the same way and a resume
    can tell that the data changed."""
    return dict(source=source.name, classes=list(source.classes), in_chans=source.in_chans,
                train_images=len(source.train), **asdict(data_cfg))  # fmt: skip


def absolute_data_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its data folder or ``npz:`` file as absolute paths, so that the checkpoint that records them
    finds the data from any working directory."""
    if cfg.data is not None:
        cfg.data = str(Path(cfg.data).resolve())
    if cfg.dataset is not None and cfg.dataset.startswith("npz:"):
        cfg.dataset = "npz:" + str(Path(cfg.dataset[4:]).resolve())
    return cfg
