"""Evaluation: top-1, top-5, loss and throughput of a model on a validation split (all ranks together)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from .config import TrainConfig
from .distributed import DistContext
from .metrics import ClassificationMeter
from .setup import autocast

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, cfg: TrainConfig, ctx: DistContext,
             stopping: Callable[[], bool] | None = None) -> dict[str, Any] | None:  # fmt: skip
    """``loss`` (cross-entropy), ``top1``, ``top5`` (percent), ``img_per_s``, ``count``, and the ``skipped``
    images (:class:`~adaptconv.data.SkippedImage`, this rank's). ``None`` if ``stopping()`` turned true between
    two batches (one process only: ranks must all finish their evaluation)."""
    was_training = model.training
    model.eval()
    meter = ClassificationMeter(ctx.device)
    criterion = nn.CrossEntropyLoss()
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    skipped = []
    start = time.perf_counter()
    for images, target, bad in loader:
        if stopping is not None and stopping():
            model.train(was_training)
            return None
        images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=fmt)
        target = target.to(ctx.device, non_blocking=True)
        with autocast(cfg, ctx.device):
            logits = model(images)
        meter.update(criterion(logits.float(), target), logits, target, len(target))
        skipped += bad
    out = meter.result(ctx)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    out["img_per_s"] = out["count"] / max(time.perf_counter() - start, 1e-9)
    out["skipped"] = skipped
    model.train(was_training)
    return out
