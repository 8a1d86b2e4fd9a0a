"""``adaptconv validate`` (and ``adaptconv train -e``): evaluate a checkpoint or pretrained weights."""

from __future__ import annotations

from ..data import DataConfig, open_source, resolve_data_config
from ..models import load_official_checkpoint
from .checkpoint import training_record
from .config import TrainConfig, resolve_config
from .distributed import DistContext, launch
from .evaluate import evaluate
from .setup import build_model, eval_loader

__all__ = ["report", "validate"]


def report(stats: dict, cfg: TrainConfig, ctx: DistContext, data_name: str) -> None:
    """Print the evaluation result (rank 0)."""
    if not ctx.is_main:
        return
    lines = [
        f"{cfg.arch} on {data_name} ({stats['count']} images): top-1 {stats['top1']:.2f}%  top-5 {stats['top5']:.2f}%"
        f"  loss {stats['loss']:.4f}  {stats['img_per_s']:.0f} img/s",
    ]
    if stats.get("skipped"):
        lines.append(f"  skipped images: {stats['skipped']}")
    print("\n".join(lines), flush=True)


def _from_record(cfg: TrainConfig, record: dict) -> TrainConfig:
    """Fill what the user did not give from the training run that wrote the checkpoint."""
    args = record.get("args") or {}
    for key in ("arch", "width", "num_classes", "img_size"):
        if getattr(cfg, key) is None and args.get(key) is not None:
            setattr(cfg, key, args[key])
    if cfg.num_classes is None and record.get("data"):
        cfg.num_classes = len(record["data"]["classes"])
    return cfg


def _validate_worker(ctx: DistContext, cfg: TrainConfig) -> None:
    record = training_record(cfg.checkpoint) if cfg.checkpoint else None
    source = open_source(cfg.data, cfg.dataset)
    model = build_model(cfg, cfg.num_classes or source.num_classes, source.in_chans)
    if cfg.checkpoint:
        load_official_checkpoint(model, cfg.checkpoint)
    data_cfg = resolve_data_config(source, model.pretrained_cfg, cfg.img_size)
    trained = (record or {}).get("data")
    if trained and trained.get("source") == source.name:  # feed the images exactly as in training
        data_cfg = DataConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in trained.items()
                                 if k in DataConfig.__dataclass_fields__})  # fmt: skip
    model = model.to(ctx.device)
    if cfg.channels_last:
        import torch

        model = model.to(memory_format=torch.channels_last)
    report(evaluate(model, eval_loader(source, data_cfg, cfg, ctx), cfg, ctx), cfg, ctx, source.name)


def validate(cfg: TrainConfig) -> None:
    """Evaluate ``cfg.checkpoint`` (a training checkpoint or any weights file) or ``cfg.pretrained`` weights."""
    if cfg.checkpoint:
        record = training_record(cfg.checkpoint)
        if record:
            cfg = _from_record(cfg, record)
    cfg = resolve_config(cfg)
    launch(_validate_worker, cfg)
