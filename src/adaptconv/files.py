"""Writing files so that nothing is lost: a file is replaced whole or not at all.

:func:`atomic_write` writes to a temporary file in the same folder (created exclusively, with the permissions the
umask gives, as any other file of the user), flushes it to disk and renames it over the target, so a crash at any
moment leaves the old file or the new one, never half of one. A process killed mid-write leaves its temporary
file behind; :func:`temporary_files` finds such files, for whoever owns the folder to remove.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "temporary_files"]

TMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], *, overwrite: bool = True) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it and rename it to ``path``.

    With ``overwrite=False`` an existing ``path`` is never replaced: :class:`FileExistsError` (checked at the
    rename itself, so two writers cannot both succeed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and path.exists():  # fail before the work of writing
        raise FileExistsError(f"{path} exists")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
    try:
        with open(tmp, "xb") as f:  # O_CREAT | O_EXCL, mode 0o666 & ~umask
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic, and refuses an existing target
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    return path


def temporary_files(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """The temporary files that :func:`atomic_write` calls for ``folder/<name>`` left behind (a killed write)."""
    folder = Path(folder)
    found: list[Path] = []
    for name in names:
        found += sorted(p for p in folder.glob(f".{name}.*{TMP_SUFFIX}") if p.is_file())
    return found
