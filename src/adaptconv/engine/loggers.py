"""Per-epoch results: ``summary.csv`` always, TensorBoard and Weights & Biases on request (rank 0 only).

``summary.csv`` is rewritten (atomically) from the run's history, which travels in the checkpoint, so after a
resume it holds exactly one row per finished epoch. W&B runs offline unless ``WANDB_MODE`` says otherwise: it
needs no account, and ``wandb sync`` uploads the run later.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from ..files import atomic_write
from .config import ConfigError

__all__ = ["COLUMNS", "EpochLogger", "read_summary"]

COLUMNS = ("epoch", "lr", "train_loss", "val_loss", "top1", "top5", "img_per_s", "peak_mem_mib", "seconds", "ema_top1")
LOG_KINDS = ("csv", "tensorboard", "wandb")


def _write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def read_summary(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``summary.csv`` as floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


class EpochLogger:
    """Writes one row per epoch to every requested sink."""

    def __init__(self, output: Path, kinds: list[str], config: dict[str, Any], run_name: str) -> None:
        unknown = [k for k in kinds if k not in LOG_KINDS]
        if unknown:
            raise ConfigError(f"unknown --log {', '.join(unknown)}; choose from {', '.join(LOG_KINDS)}")
        self.output = output
        self.tb = self.wandb_run = None
        if "tensorboard" in kinds:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError("--log tensorboard needs the tensorboard package: pip install tensorboard") from e
            self.tb = SummaryWriter(log_dir=str(output / "tensorboard"))
        if "wandb" in kinds:
            try:
                import wandb
            except ImportError as e:
                raise ImportError("--log wandb needs the wandb package: pip install wandb") from e
            mode = os.environ.get("WANDB_MODE", "offline")
            self.wandb_run = wandb.init(project="adaptconv", name=run_name, dir=str(output), config=config,
                                        mode=mode, resume="allow", id=_wandb_id(output))  # fmt: skip

    def write(self, history: list[dict[str, float]]) -> None:
        """Rewrite ``summary.csv`` from ``history`` and send its last row to TensorBoard / W&B."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
        _write_text_atomic(self.output / "summary.csv", buf.getvalue())
        if not history:
            return
        row = history[-1]
        epoch = int(row["epoch"])
        if self.tb is not None:
            for k in COLUMNS[1:]:
                if row.get(k) is not None:
                    self.tb.add_scalar(k, row[k], epoch)
            self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({k: row[k] for k in COLUMNS[1:] if row.get(k) is not None}, step=epoch)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def _fmt(v) -> str:
    if v is None:
        return ""
    return str(int(v)) if isinstance(v, int) else f"{v:.6g}"


def _wandb_id(output: Path) -> str:
    """One W&B run per output folder, so a resumed run continues the same W&B run."""
    file = output / "wandb_id.txt"
    if file.is_file():
        return file.read_text().strip()
    import uuid

    run_id = uuid.uuid4().hex[:8]
    _write_text_atomic(file, run_id)
    return run_id
