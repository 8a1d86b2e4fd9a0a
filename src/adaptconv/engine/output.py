"""A run's output folder: one run writes to it at a time, and a new run never overwrites an earlier one's files.

:func:`claim_output` takes an exclusive lock on ``<folder>/.lock`` (``fcntl.lockf``: the system releases it when
the process ends, even by SIGKILL), refuses a folder that holds another run's checkpoints, and removes the
temporary files that writes killed mid-way left there (safe under the lock: nobody else is writing).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..files import temporary_files
from ..models.checkpoint import CheckpointError
from .config import ConfigError

__all__ = ["BEST", "CHECKPOINT", "OutputLock", "claim_output"]

CHECKPOINT = "checkpoint.pth"
BEST = "model_best.pth"
#: the files of a run, which a new run must not overwrite
RUN_FILES = (CHECKPOINT, BEST)
#: every file a run writes atomically (and may leave a temporary file of, if killed while writing it)
WRITTEN = (*RUN_FILES, "summary.csv", "wandb_id.txt")
LOCK = ".lock"


class OutputLock:
    """The exclusive right to write into ``folder`` (until :meth:`release` or the end of the process).

    A POSIX record lock (``fcntl.lockf``): unlike ``flock``, it is not inherited by forked children, so data-loading
    workers that outlive a killed run for a moment do not keep its folder locked."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(self.fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            raise ConfigError(
                f"another adaptconv train (process {holder}) is writing to {folder}: two runs in one folder would "
                "overwrite each other's checkpoints. Wait for it to end, or choose another --output."
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the lock
            self.fd = None


def claim_output(folder: str | os.PathLike, resume: str | None = None) -> OutputLock:
    """Lock ``folder`` for a training run and make sure the run overwrites nothing of another.

    A new run needs a folder without checkpoints; a resumed run may write where its checkpoint lies, and elsewhere
    only into a folder without checkpoints. Returns the lock; raises :class:`CheckpointError` or
    :class:`ConfigError` with what to do.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = OutputLock(folder)
    try:
        existing = [name for name in RUN_FILES if (folder / name).exists()]
        continuing = resume is not None and Path(resume).resolve().parent == folder.resolve()
        if existing and not continuing:
            held = " and ".join(existing)
            if resume is not None:
                raise CheckpointError(
                    f"--output {folder} already holds {held} of another run; resuming {resume} there would overwrite "
                    f"them. Leave --output out to continue in {Path(resume).parent}, or choose a folder without "
                    "checkpoints; nothing was overwritten."
                )
            advice = (
                f"Continue it with --resume {folder / CHECKPOINT}, or choose another --output"
                if CHECKPOINT in existing
                else "Choose another --output, or move the files away"
            )
            raise CheckpointError(
                f"{folder} already holds {held} from an earlier run. {advice}; nothing was overwritten."
            )
        leftovers = temporary_files(folder, WRITTEN)
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        if leftovers:
            names = ", ".join(p.name for p in leftovers[:3]) + (", ..." if len(leftovers) > 3 else "")
            print(f"removed {len(leftovers)} temporary file(s) that interrupted writes left in {folder} ({names})",
                  flush=True)  # fmt: skip
    except BaseException:
        lock.release()
        raise
    return lock
