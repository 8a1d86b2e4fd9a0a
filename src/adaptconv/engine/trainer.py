"""``adaptconv train``: the training loop, with exact resume, signal-safe checkpoints and a NaN guard.

One step: (mixup/cutmix) -> forward under autocast -> loss -> backward through the AMP scaler -> SGD step -> EMA
update -> learning rate for the next step (timm's schedulers, per step). The host reads device values only every
``--print-freq`` steps, before a checkpoint and at the end of an epoch; those are also the points where a
non-finite loss or a stop signal is acted on, identically on every rank.
"""

from __future__ import annotations

import math
import os
import random
import resource
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..data import DataError, open_source, resolve_data_config
from ..models.checkpoint import CheckpointError, fit_state_dict
from .checkpoint import atomic_save, capture_rng, load_training_checkpoint, restore_rng
from .config import RECIPES, TrainConfig, resolve_config
from .distributed import DistContext, all_reduce_sum, gather_objects, launch
from .evaluate import evaluate
from .loggers import EpochLogger
from .metrics import ClassificationMeter
from .output import BEST, CHECKPOINT, claim_output
from .resume import resume_config
from .setup import (
    absolute_data_paths,
    autocast,
    build_model,
    build_scheduler,
    data_record,
    eval_loader,
    train_loader,
)
from .sync_batchnorm import convert_sync_batchnorm

__all__ = ["NonFiniteLossError", "TrainingStopped", "train"]


class NonFiniteLossError(RuntimeError):
    """The loss or the weights became NaN or infinite; the run stopped without writing a checkpoint."""


class TrainingStopped(SystemExit):
    """A stop signal (SIGTERM/SIGINT) arrived; a checkpoint was saved. The exit code is 128 + the signal number."""


def train(cfg: TrainConfig) -> None:
    """Run ``cfg`` in the process layout its distributed flags describe (see :func:`.distributed.launch`).

    With ``cfg.resume`` every setting the command line leaves out comes from the checkpoint (see
    :func:`.resume.resume_config`). The writing process locks the output folder for the run's duration.
    """
    notes: list[str] = []
    if cfg.resume:
        ckpt = load_training_checkpoint(cfg.resume)
        cfg, notes = resume_config(cfg, ckpt["args"], ckpt["epoch"])
        del ckpt
    cfg = absolute_data_paths(resolve_config(cfg))
    cfg.output = str(_output_dir(cfg))
    main = _launches_rank_zero(cfg)
    if main:
        for note in notes:
            print(f"resuming with {note}", flush=True)
    if cfg.evaluate:  # writes nothing
        launch(_train_worker, cfg)
        return
    lock = claim_output(cfg.output, cfg.resume) if main else None
    try:
        launch(_train_worker, cfg)
    finally:
        if lock is not None:
            lock.release()


def _launches_rank_zero(cfg: TrainConfig) -> bool:
    """Whether this process is (or spawns) rank 0, the one that writes the run's files."""
    return int(os.environ.get("RANK", max(cfg.rank, 0))) == 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _seed_everything(seed: int, rank: int) -> None:
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _output_dir(cfg: TrainConfig) -> Path:
    if cfg.output:
        return Path(cfg.output)
    if cfg.resume:
        return Path(cfg.resume).resolve().parent
    return Path("output") / "train" / f"{datetime.now():%Y%m%d-%H%M%S}-{cfg.arch}"


class _StopFlag:
    """Remembers a SIGTERM/SIGINT so that the loop can save a checkpoint at the next safe point."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous = {}

    def install(self) -> None:
        for s in (signal.SIGTERM, signal.SIGINT):
            self._previous[s] = signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def uninstall(self) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)


class Trainer:
    """The state of one training process and the loop over it."""

    def __init__(self, ctx: DistContext, cfg: TrainConfig) -> None:
        self.ctx, self.cfg = ctx, cfg
        _seed_everything(cfg.seed, ctx.rank)
        self.source = open_source(cfg.data, cfg.dataset)
        num_classes = cfg.num_classes or self.source.num_classes
        self.model = build_model(cfg, num_classes, self.source.in_chans)
        self.data_cfg = resolve_data_config(
            self.source, self.model.pretrained_cfg, cfg.img_size, cfg.crop_pct, cfg.crop_scale
        )
        self.loader, self.sampler = train_loader(self.source, self.data_cfg, cfg, ctx)
        self.val_loader = eval_loader(self.source, self.data_cfg, cfg, ctx)
        self.steps_per_epoch = len(self.loader)
        if self.steps_per_epoch == 0:
            raise DataError(f"{len(self.source.train)} training images make no full batch of {cfg.batch_size} "
                            f"on {ctx.world_size} process(es): lower --batch-size")  # fmt: skip

        model = self.model.to(ctx.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if cfg.sync_bn and ctx.distributed:
            model = convert_sync_batchnorm(model, ctx.device)
        self.model = model
        self.ema = None
        if cfg.ema:
            from timm.utils import ModelEmaV3

            # warm-up: the decay grows with the step count, so that short runs do not average in the random init
            self.ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True)
        wrapped: nn.Module = model
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            wrapped = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.forward_model = torch.compile(wrapped) if cfg.compile else wrapped

        self.optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay, nesterov=bool(cfg.nesterov))  # fmt: skip
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=cfg.amp == "fp16")
        self.mixup = None
        if cfg.mixup > 0 or cfg.cutmix > 0:
            from timm.data import Mixup

            self.mixup = Mixup(mixup_alpha=cfg.mixup, cutmix_alpha=cfg.cutmix, label_smoothing=cfg.label_smoothing,
                               num_classes=num_classes)  # fmt: skip
            from timm.loss import SoftTargetCrossEntropy

            self.criterion = SoftTargetCrossEntropy()
        else:
            self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

        self.epoch, self.step, self.global_step = cfg.start_epoch, 0, cfg.start_epoch * self.steps_per_epoch
        self.best_top1, self.best_epoch = -1.0, -1
        self.history: list[dict[str, float]] = []
        self.skipped: dict[str, set[str]] = {"train": set(), "val": set()}  # images skipped, per split
        self.meter: ClassificationMeter | None = None
        self.resumed_sums: torch.Tensor | None = None
        self.output = _output_dir(cfg)
        if cfg.resume:
            self._resume(load_training_checkpoint(cfg.resume))
        self.scheduler.step_update(self.global_step)

    # ----------------------------------------------------------------------------------------------------------
    def _resume(self, ckpt: dict[str, Any]) -> None:
        cfg = self.cfg
        if ckpt["arch"] != cfg.arch:
            raise CheckpointError(f"--resume {cfg.resume} is a checkpoint of {ckpt['arch']}, not of --arch {cfg.arch}")
        if ckpt.get("world_size", 1) != self.ctx.world_size:
            raise CheckpointError(
                f"--resume {cfg.resume} was written by a run of {ckpt.get('world_size', 1)} process(es); resume it "
                f"with the same number (this run has {self.ctx.world_size}) so that it continues exactly"
            )
        trained_on = (ckpt.get("data") or {}).get("train_images")
        if trained_on is not None and trained_on != len(self.source.train):
            raise DataError(
                f"--resume {cfg.resume}: the run trained on {trained_on} images of {self.source.name}, which holds "
                f"{len(self.source.train)} now. A run continues exactly only on the same data; start a new run "
                f"(--pretrained {cfg.resume} starts from its weights)."
            )
        try:
            self.model.load_state_dict(fit_state_dict(self.model, ckpt["state_dict"]))
            self.optimizer.load_state_dict(ckpt["optimizer"])
            if ckpt["args"].get("epochs") == cfg.epochs:  # else a new schedule over the new number of epochs
                self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
            if self.ema is not None:  # a run that had no EMA before starts its EMA from the resumed weights
                ema = ckpt["ema"] if ckpt.get("ema") is not None else ckpt["state_dict"]
                self.ema.module.load_state_dict(fit_state_dict(self.ema.module, ema))
        except (CheckpointError, ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(
                f"--resume {cfg.resume} does not fit the model and optimiser it describes: {e}"
            ) from None
        self.epoch, self.step, self.global_step = ckpt["epoch"], ckpt["step"], ckpt["global_step"]
        self.best_top1, self.best_epoch = ckpt["best_top1"], ckpt["best_epoch"]
        self.history = list(ckpt["history"])
        skipped = ckpt.get("skipped")
        if isinstance(skipped, dict):  # older checkpoints kept a count only
            self.skipped = {split: set(names) for split, names in skipped.items()}
        mine = ckpt["ranks"][self.ctx.rank]
        restore_rng(mine["rng"])
        self.resumed_sums = mine["train_sums"]
        if self.ctx.is_main and not cfg.evaluate:
            self._restore_best(ckpt)

    def _restore_best(self, ckpt: dict[str, Any]) -> None:
        """The checkpoint names a best epoch: make sure its file is there (a run killed while writing it, or a file
        deleted by hand). The checkpoint of that very epoch's end rebuilds it; otherwise the claim is dropped."""
        best = self.output / BEST
        if self.best_epoch <= 0 or best.exists():
            return
        if ckpt["epoch"] == self.best_epoch and ckpt["step"] == 0:
            atomic_save(ckpt, best)
            self._log(f"restored {best} (epoch {self.best_epoch}) from {self.cfg.resume}")
            return
        self._warn(f"{best} (the best epoch, {self.best_epoch}) is missing, and this checkpoint (epoch "
                   f"{ckpt['epoch']}) cannot rebuild it; the best of the epochs from now on will be "
                   "written there")  # fmt: skip
        self.best_top1, self.best_epoch = -1.0, -1

    def _state(self) -> dict[str, Any]:
        # per rank: its generators, and its share of the epoch's running training loss and hits
        mine = dict(rng=capture_rng(), train_sums=None if self.meter is None else self.meter.sums.cpu())
        states = gather_objects(mine, self.ctx)
        skipped = self._all_skipped()
        return dict(
            arch=self.cfg.arch, args=self.cfg.to_dict(), data=data_record(self.source, self.data_cfg),
            epoch=self.epoch, step=self.step, global_step=self.global_step, world_size=self.ctx.world_size,
            state_dict=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(),
            ema=None if self.ema is None else self.ema.module.state_dict(),
            best_top1=self.best_top1, best_epoch=self.best_epoch, history=self.history, skipped=skipped,
            ranks=states,
        )  # fmt: skip

    def save(self, best: bool = False) -> None:
        """Write ``model_best.pth`` (if ``best``) and then ``checkpoint.pth``, each atomically; a collective call in
        DDP. The best weights go first, so that no checkpoint ever names a best file that is not there. Weights
        that are NaN or infinite are never written (every rank holds the same weights, so all stop together)."""
        state = self._state()
        bad = [k for k, v in state["state_dict"].items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise NonFiniteLossError(
                f"the weights became NaN or infinite (epoch {self.epoch + 1}, step {self.step} of "
                f"{self.steps_per_epoch}, lr {self.optimizer.param_groups[0]['lr']:.4g}; "
                f"{_plural(len(bad), 'tensor')}, e.g. {bad[0]}). Training stopped; the last checkpoint in "
                f"{self.output} was not overwritten. Try a lower --lr or --wd, --amp bf16 instead of fp16, or check "
                "the data."
            )
        if self.ctx.is_main:
            if best:
                atomic_save(state, self.output / BEST)
            atomic_save(state, self.output / CHECKPOINT)

    # ----------------------------------------------------------------------------------------------------------
    def _log(self, text: str) -> None:
        if self.ctx.is_main:
            print(text, flush=True)

    def _warn(self, text: str) -> None:
        if self.ctx.is_main:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def _stop_signal(self, stop: _StopFlag) -> int:
        """The stop signal any rank received (0: none), the same on every rank."""
        return int(all_reduce_sum([float(stop.signum)], self.ctx)[0])

    def _stop(self, signum: int) -> None:
        """Save the state as it is and end the run with 128 + ``signum``."""
        self.save()
        self._log(f"stopped by signal {signum}: checkpoint saved at epoch {self.epoch + 1}, step {self.step}; "
                  f"continue with --resume {self.output / CHECKPOINT}")  # fmt: skip
        raise TrainingStopped(128 + signum)

    def _check(self, bad_at: torch.Tensor, stop: _StopFlag) -> None:
        """The synchronised safe point: stop on a non-finite loss or a signal, the same way on every rank."""
        flags = all_reduce_sum([float(bad_at.item() >= 0), float(stop.signum)], self.ctx)
        if flags[0] > 0:
            raise NonFiniteLossError(
                f"the training loss became NaN or infinite (epoch {self.epoch + 1}, at or before step "
                f"{self.step} of {self.steps_per_epoch}, lr {self.optimizer.param_groups[0]['lr']:.4g}). Training "
                f"stopped; the last checkpoint in {self.output} was not overwritten. Try a lower --lr, --amp bf16 "
                "instead of fp16, or check the data."
            )
        if flags[1] > 0:
            self._stop(int(stop.signum or signal.SIGTERM))  # another rank got it

    def train_epoch(self, stop: _StopFlag) -> dict[str, float]:
        cfg, ctx = self.cfg, self.ctx
        self.forward_model.train()
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(self.step * self.loader.batch_size)
        meter = self.meter = ClassificationMeter(ctx.device)
        if self.resumed_sums is not None:  # the part of this epoch done before the resume
            meter.sums += self.resumed_sums.to(ctx.device)
            self.resumed_sums = None
        bad_at = torch.tensor(-1, device=ctx.device)
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        if ctx.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(ctx.device)
        images_seen, start = 0, time.perf_counter()
        bar = _progress(self.steps_per_epoch, self.step, f"epoch {self.epoch + 1}/{cfg.epochs}", ctx.is_main)
        for images, target, skipped in self.loader:
            self._note_skipped("train", skipped)
            images = images.to(ctx.device, non_blocking=True).contiguous(memory_format=fmt)
            target = target.to(ctx.device, non_blocking=True)
            soft = None
            if self.mixup is not None:
                images, soft = self.mixup(images, target)
            with autocast(cfg, ctx.device):
                logits = self.forward_model(images)
            loss = self.criterion(logits.float(), soft if soft is not None else target)
            bad_at = torch.where((bad_at < 0) & ~torch.isfinite(loss.detach()), self.step, bad_at)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.ema is not None:
                self.ema.update(self.model, step=self.global_step)
            self.step += 1
            self.global_step += 1
            self.scheduler.step_update(self.global_step)
            meter.update(loss, None if soft is not None else logits, target, len(target))
            images_seen += len(target)
            at_print = self.step % cfg.print_freq == 0 or self.step == self.steps_per_epoch
            at_ckpt = cfg.checkpoint_every_steps > 0 and self.global_step % cfg.checkpoint_every_steps == 0
            if at_print or at_ckpt or (stop.signum and not ctx.distributed):
                self._check(bad_at, stop)
            if at_ckpt and self.step < self.steps_per_epoch:
                self.save()
            if at_print:
                rate = images_seen * ctx.world_size / max(time.perf_counter() - start, 1e-9)
                lr = self.optimizer.param_groups[0]["lr"]
                bar.report(self.step, loss=loss.item(), lr=lr, img_s=rate)
        bar.close()
        seconds = time.perf_counter() - start
        result = meter.result(ctx)  # self.meter stays until the epoch is recorded: a stop before keeps its sums
        result["img_per_s"] = images_seen * ctx.world_size / seconds if images_seen else None
        result["seconds"] = seconds
        return result

    def _all_skipped(self) -> dict[str, list[str]]:
        """The images every rank skipped, per split (a collective call in DDP)."""
        return {split: sorted(set().union(*gather_objects(names, self.ctx))) for split, names in self.skipped.items()}

    def _note_skipped(self, split: str, skipped: list) -> None:
        for image in skipped:
            if image.where not in self.skipped[split]:
                self.skipped[split].add(image.where)
                self._warn(f"skipped {split} image {image.where}: {image.reason}")

    def fit(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        logger = None
        if ctx.is_main:
            self.output.mkdir(parents=True, exist_ok=True)
            logger = EpochLogger(self.output, [k for k in cfg.log if k != "csv"], cfg.to_dict(), self.output.name)
        stop = _StopFlag()
        stop.install()
        started = time.perf_counter()
        # one rank alone may cut its evaluation short; ranks together finish it and then agree on stopping
        stopping = None if ctx.distributed else (lambda: bool(stop.signum))
        try:
            self._log(f"training {cfg.arch} on {self.source.name} ({len(self.source.train)} train / "
                      f"{len(self.source.val)} val images, {self.data_cfg.img_size} px) for "
                      f"{_plural(cfg.epochs, 'epoch')} on {ctx.world_size} x {ctx.device.type}; output: "
                      f"{self.output}")  # fmt: skip
            while self.epoch < cfg.epochs:
                # after a resume at an epoch's last step this only adds up the steps done before
                train_stats = self.train_epoch(stop)
                val = evaluate(self.forward_model, self.val_loader, cfg, ctx, stopping)
                ema_val = None
                if val is not None and self.ema is not None:
                    ema_val = evaluate(self.ema.module, self.val_loader, cfg, ctx, stopping)
                signum = self._stop_signal(stop)
                if signum or val is None or (self.ema is not None and ema_val is None):
                    self._stop(signum or int(signal.SIGTERM))  # the epoch is trained: a resume evaluates it
                self._note_skipped("val", val["skipped"])
                row = dict(
                    epoch=self.epoch + 1, lr=self.optimizer.param_groups[0]["lr"],
                    train_loss=train_stats["loss"], val_loss=val["loss"], top1=val["top1"], top5=val["top5"],
                    img_per_s=train_stats["img_per_s"], peak_mem_mib=_peak_memory_mib(ctx.device),
                    seconds=train_stats["seconds"], ema_top1=ema_val["top1"] if ema_val else None,
                )  # fmt: skip
                self.history.append(row)
                self.meter = None
                best = self._is_best(val)
                if best:
                    self.best_top1, self.best_epoch = val["top1"], self.epoch + 1
                self.epoch, self.step = self.epoch + 1, 0
                self.save(best=best)
                if logger is not None:
                    logger.write(self.history)
                self._log(f"epoch {self.epoch}/{cfg.epochs}: train loss {_num(row['train_loss'])}, val loss "
                          f"{val['loss']:.4f}, top-1 {val['top1']:.2f}%, top-5 {val['top5']:.2f}%, train "
                          f"{_num(row['img_per_s'], '.0f')} img/s, {row['peak_mem_mib']:.0f} MiB peak"
                          + (f", EMA top-1 {ema_val['top1']:.2f}%" if ema_val else ""))  # fmt: skip
                signum = self._stop_signal(stop)  # one that came while the epoch's files were written
                if signum:
                    self._stop(signum)
        finally:
            stop.uninstall()
            if logger is not None:
                logger.close()
        self._summary(time.perf_counter() - started)

    def _is_best(self, val: dict[str, float]) -> bool:
        """A better top-1 than any epoch before, with a finite validation loss: an epoch whose outputs overflow
        (NaN or infinite loss) is reported and never taken as the best."""
        if not math.isfinite(val["loss"]):
            self._warn(f"epoch {self.epoch + 1}: the validation loss is {val['loss']} (top-1 {val['top1']:.2f}%): "
                       "the model's outputs overflow in evaluation, so this epoch is not taken as the best. A lower "
                       "--lr, or --amp bf16 instead of fp16, may help.")  # fmt: skip
            return False
        return val["top1"] > self.best_top1

    def _summary(self, seconds: float) -> None:
        skipped = self._all_skipped()  # a collective call: before rank 0 alone goes on
        if not self.ctx.is_main or not self.history:
            return
        last = self.history[-1]
        width = f" (width {self.cfg.width:g})" if self.cfg.width not in (None, 1, 1.0) else ""
        best = self.output / BEST
        lines = [
            f"done: {self.cfg.arch}{width}, {_plural(self.cfg.epochs, 'epoch')} on {self.source.name}",
            f"  top-1 {last['top1']:.2f}%  top-5 {last['top5']:.2f}%  "
            + (f"(best top-1 {self.best_top1:.2f}% at epoch {self.best_epoch})" if self.best_epoch > 0
               else "(no epoch had a finite validation loss: none is the best)"),
            f"  time {seconds:.0f} s in this process; {sum(r['seconds'] or 0 for r in self.history):.0f} s of "
            f"training in all epochs",
            _skipped_line(skipped) if self.cfg.skip_bad_images else None,
            f"  checkpoint: {self.output / CHECKPOINT}" + (f"  best: {best}" if best.exists() else ""),
            f"  per-epoch results: {self.output / 'summary.csv'}",
            _recipe_line(self.cfg),
        ]  # fmt: skip
        print("\n".join(line for line in lines if line), flush=True)


def _recipe_line(cfg: TrainConfig) -> str | None:
    """'  recipe cifar: arch=resnet18, ...': every hyper-parameter the recipe holds, as this run used it."""
    if not cfg.recipe:
        return None
    return f"  recipe {cfg.recipe}: " + ", ".join(f"{k}={getattr(cfg, k)!r}" for k in RECIPES[cfg.recipe])


def _skipped_line(skipped: dict[str, list[str]]) -> str:
    """'  skipped images: 2 (train 1: a/2.jpg; val 1: b/0.png)', at most 5 names a split."""
    total = sum(len(names) for names in skipped.values())
    parts = [
        f"{split} {len(names)}: " + ", ".join(names[:5]) + (f", and {len(names) - 5} more" if len(names) > 5 else "")
        for split, names in skipped.items()
        if names
    ]
    return f"  skipped images: {total}" + (f" ({'; '.join(parts)})" if parts else "")


def _num(v, spec: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


class _progress:
    """A tqdm bar on a terminal; plain log lines otherwise (rank 0 only)."""

    def __init__(self, total: int, initial: int, desc: str, main: bool) -> None:
        self.main, self.desc, self.total = main, desc, total
        self.tty = main and sys.stderr.isatty() and not os.environ.get("CI")
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)
        self.last = initial

    def report(self, step: int, loss: float, lr: float, img_s: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.last)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", img_s=f"{img_s:.0f}")
        elif self.main:
            print(f"{self.desc} step {step}/{self.total}: loss {loss:.4f}, lr {lr:.4g}, {img_s:.0f} img/s", flush=True)
        self.last = step

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _train_worker(ctx: DistContext, cfg: TrainConfig) -> None:
    trainer = Trainer(ctx, cfg)
    if cfg.evaluate:
        from .validation import report

        report(evaluate(trainer.forward_model, trainer.val_loader, cfg, ctx), cfg, ctx, trainer.source.name)
        return
    trainer.fit()
