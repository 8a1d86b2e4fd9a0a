"""Training checkpoints: written atomically, read safely, and holding everything an exact resume needs.

A file is written to a temporary name in the same folder, flushed to disk (fsync) and renamed over the old one, so
a crash at any moment leaves either the old or the new checkpoint, never half of one. Everything in it is a
tensor, a number, a string or a container of them, so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import atomic_write
from ..models.checkpoint import CheckpointError, UnreadableCheckpointError, read_torch_file

__all__ = [
    "CheckpointError",
    "atomic_save",
    "capture_rng",
    "load_training_checkpoint",
    "restore_rng",
    "training_record",
]

#: keys every training checkpoint has
REQUIRED = ("arch", "epoch", "step", "state_dict", "optimizer", "args")


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` through a temporary file, fsync and rename (:func:`adaptconv.files.atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def capture_rng() -> dict[str, Any]:
    """The state of every random generator a training step may draw from (Python, NumPy, torch CPU and CUDA)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },  # fmt: skip
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`."""
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _as_tuple(x):
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def training_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``arch``, ``args``, ``data``, ``epoch`` and ``step`` of a checkpoint written by ``adaptconv train``;
    ``None`` for other files (plain or official weights) and for files that cannot be read (their loader reports
    why)."""
    try:
        ckpt = read_torch_file(path)
    except CheckpointError:
        return None
    if isinstance(ckpt, dict) and all(k in ckpt for k in REQUIRED):
        return {k: ckpt.get(k) for k in ("arch", "args", "data", "epoch", "step")}
    return None


def load_training_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by ``adaptconv train``; a clear :class:`CheckpointError` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"--resume {path}: no such file")
    try:
        ckpt = read_torch_file(path)
    except UnreadableCheckpointError as e:
        state = "The file may be truncated or corrupt; it was not changed." if e.damaged else "It was not changed."
        raise CheckpointError(
            f"cannot read {path} as a training checkpoint: {e} {state} Resume from another checkpoint (e.g. "
            "model_best.pth), or start anew."
        ) from None
    missing = [k for k in REQUIRED if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} holds no training state (it lacks {', '.join(missing)}); "
            "it may be plain model weights: fine-tune from them with --pretrained PATH instead of --resume."
        )  # fmt: skip
    return ckpt
