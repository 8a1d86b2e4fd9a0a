"""``adaptconv validate`` (and ``adaptconv train -e``): evaluate a checkpoint or pretrained weights."""

from __future__ import annotations

from ..data import DataConfig, open_source, resolve_data_config
from ..models import load_official_checkpoint, read_checkpoint
from .checkpoint import training_record
from .config import ConfigError, TrainConfig, resolve_config
from .distributed import DistContext, launch
from .evaluate import evaluate
from .setup import absolute_data_paths, build_model, eval_loader
from .weights import describe, infer_model, with_guess

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
        names = sorted({image.where for image in stats["skipped"]})
        lines.append(f"  skipped images: {len(names)} ({', '.join(names[:5])}{', ...' if len(names) > 5 else ''})")
    print("\n".join(lines), flush=True)


def _from_record(cfg: TrainConfig, record: dict) -> TrainConfig:
    """Fill what the user did not give from the training run that wrote the checkpoint: its model, and its data
    where no data is given."""
    args = record.get("args") or {}
    for key in ("arch", "width", "num_classes", "img_size", "model_kwargs", "stem", "device_data", "crop_pct"):
        if getattr(cfg, key) is None and args.get(key) is not None:
            setattr(cfg, key, args[key])
    if cfg.num_classes is None and record.get("data"):
        cfg.num_classes = len(record["data"]["classes"])
    if cfg.data is None and cfg.dataset is None and (args.get("data") or args.get("dataset")):
        cfg.data, cfg.dataset = args.get("data"), args.get("dataset")
        print(f"data: the run's own, {cfg.data or cfg.dataset or 'the embedded subset'} (give DIR or --dataset for "
              "other data)", flush=True)  # fmt: skip
    return cfg


def _from_weights(cfg: TrainConfig) -> TrainConfig:
    """The model of a file of plain weights, where no ``--arch`` is given: the one its keys and shapes fit."""
    guesses = infer_model(read_checkpoint(cfg.checkpoint))
    if len(guesses) != 1:
        found = "fit several: " + ", ".join(describe(g) for g in guesses) if guesses else "fit no adaptconv model"
        raise ConfigError(
            f"--checkpoint {cfg.checkpoint} holds plain weights, and their keys and shapes {found}. Name the "
            "architecture with -a ARCH (and --width, --num-classes as it was trained; any timm model name works)."
        )
    print(f"model: {describe(guesses[0])}, from the keys and shapes of {cfg.checkpoint}", flush=True)
    return with_guess(cfg, guesses[0])


def _validate_worker(ctx: DistContext, cfg: TrainConfig) -> None:
    record = training_record(cfg.checkpoint) if cfg.checkpoint else None
    source = open_source(cfg.data, cfg.dataset)
    num_classes = cfg.num_classes or source.num_classes
    if source.num_classes > num_classes:
        raise ConfigError(
            f"{source.name} has {source.num_classes} classes, more than the model's {num_classes} outputs: validate "
            "on data with the classes the model was trained on (or set --num-classes)."
        )
    model = build_model(cfg, num_classes, source.in_chans)
    if cfg.checkpoint:
        load_official_checkpoint(model, cfg.checkpoint)
    data_cfg = resolve_data_config(source, model.pretrained_cfg, cfg.img_size, cfg.crop_pct, cfg.crop_scale)
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
        elif cfg.arch is None:
            cfg = _from_weights(cfg)
    launch(_validate_worker, absolute_data_paths(resolve_config(cfg)))
