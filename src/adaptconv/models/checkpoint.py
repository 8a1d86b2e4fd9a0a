"""Official checkpoints: read them safely, map their key names to ours and back, load them strictly.

Accepted files: a plain state_dict; ``{'state_dict': ...}`` or ``{'model': ...}`` wrappers; mmcls files
(``meta`` + ``state_dict`` with ``backbone.``/``head.fc.`` keys); ``module.`` prefixes from DataParallel/DDP; and
state_dicts in our own key names. Files are read with ``torch.load(weights_only=True)``: a file that needs
arbitrary unpickling is refused.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import socket
import zipfile
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    "CheckpointError",
    "checkpoint_dir",
    "fit_state_dict",
    "load_official_checkpoint",
    "official_key_map",
    "official_state_dict",
    "read_checkpoint",
    "read_torch_file",
    "UnreadableCheckpointError",
]

#: seconds to wait for a download server before giving up (a machine with no network fails at once or then)
DOWNLOAD_TIMEOUT_S = float(os.environ.get("ADAPTCONV_DOWNLOAD_TIMEOUT", "20"))


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not fit the model."""


def official_key_map(model: nn.Module) -> dict[str, str]:
    """Our state_dict key -> the official key, for every entry of ``model.state_dict()``."""
    rules = getattr(model, "official_key_rules", None)
    if rules is None:
        raise TypeError(f"{type(model).__name__} is not an adaptconv SCNet/RedNet classifier")
    mapping = {}
    for key in model.state_dict():
        official = key
        for pattern, repl in rules:
            official = re.sub(pattern, repl, official, count=1)
        mapping[key] = official
    return mapping


def official_state_dict(model: nn.Module) -> OrderedDict[str, Tensor]:
    """``model``'s weights under the official key names and shapes (``scnet.py``, or mmcls for RedNet)."""
    mapping = official_key_map(model)
    return OrderedDict((mapping[k], v) for k, v in model.state_dict().items())


#: what the start of a file says it is, for files that are not checkpoints
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"RIFF": "a RIFF file (a WebP image or a sound)",
    b"\x93NUMPY": "a NumPy .npy array",
}


class UnreadableCheckpointError(CheckpointError):
    """A file that is not a whole, safely loadable PyTorch checkpoint; ``damaged`` where it is cut short or corrupt
    (rather than a file of another kind)."""

    def __init__(self, message: str, damaged: bool) -> None:
        super().__init__(message)
        self.damaged = damaged


def _what_it_is(path: Path, head: bytes) -> tuple[str, bool]:
    """A few words on what a file that is not a checkpoint holds, and whether it looks damaged."""
    if not head:
        return "the file is empty (an interrupted download or copy)", True
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive cut short or corrupt (an interrupted download or copy)", True
    for magic, kind in _SIGNATURES.items():
        if head.startswith(magic):
            return f"it is {kind}", False
    if path.suffix.lower() == ".onnx":
        return "it is an ONNX model (adaptconv export writes those; they are not loaded back as weights)", False
    try:
        text = head.decode("utf-8").lower()
    except UnicodeDecodeError:
        return "it is neither the zip archive torch.save writes nor a legacy pickle", True
    if "<html" in text or "<!doctype" in text:
        return ("it is a web page (HTML): a download saved from a share link that needs a log-in looks like this; "
                "download the file itself"), False  # fmt: skip
    return "it is a text file", True


def _torch_reason(e: BaseException) -> str:
    """What torch's loader found wrong, without its advice (e.g. to retry with ``weights_only=False``)."""
    text = str(e)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\s*\n|Check the documentation|$)", text, re.S)
    if found:
        return " ".join(found.group(1).split())
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__


def read_torch_file(path: str | os.PathLike) -> object:
    """``torch.load(path, weights_only=True)`` to the CPU, after checking that the file is whole.

    A file in torch.save's zip format has every member's CRC-32 checked first (torch's reader does not), so a
    flipped bit is refused instead of loaded. Raises :class:`UnreadableCheckpointError`, naming the file, saying
    what it is and what to do, for a missing, damaged or unsafe file or one that is not a checkpoint at all.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(64)
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # reads every member and checks its CRC-32
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
            bad = str(e)
        if bad is not None:
            raise UnreadableCheckpointError(
                f"{path} is damaged: the data of {bad} does not match the checksum stored with it (CRC-32), so the "
                "file changed after it was written (a disk, copy or transfer error). It was not loaded. Use another "
                "copy of it (or download it again).",
                damaged=True,
            )
    elif not head.startswith(b"\x80"):  # a legacy torch.save file starts with a pickle protocol byte
        what, damaged = _what_it_is(path, head)
        raise UnreadableCheckpointError(f"{path} is not a readable PyTorch checkpoint: {what}.", damaged)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"unsupported global:?\s*(?:GLOBAL\s+)?([\w.]+)", str(e), re.I)
        if unsafe:
            raise UnreadableCheckpointError(
                f"{path} stores Python objects besides tensors (such as {unsafe.group(1)}), and loading it would "
                "need unsafe unpickling, which could run any code. adaptconv reads files with "
                "torch.load(weights_only=True) only. If you trust the file, load it in Python with "
                "torch.load(path, weights_only=False), save its state_dict with torch.save, and use that file.",
                damaged=False,
            ) from None
        raise UnreadableCheckpointError(
            f"{path} is not a readable PyTorch checkpoint (it cannot be unpickled: {_torch_reason(e)}).", damaged=True
        ) from None
    except Exception as e:  # torch's readers raise many types on a file that is not a checkpoint
        raise UnreadableCheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({_torch_reason(e)}). A download saved as a web page or an "
            "interrupted download looks like this: download the file again.",
            damaged=True,
        ) from None


def _sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checkpoint_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where downloaded weights are kept: ``cache_dir``, else torch.hub's ``<hub dir>/checkpoints``."""
    return Path(cache_dir) if cache_dir else Path(torch.hub.get_dir()) / "checkpoints"


def _download(url: str, file_name: str | None, sha256_prefix: str | None, cache_dir: str | None) -> Path:
    """Fetch ``url`` into torch.hub's checkpoint cache (or ``cache_dir``) unless already there; check its hash."""
    name = file_name or os.path.basename(urlparse(url).path)
    folder = checkpoint_dir(cache_dir)
    target = folder / name
    if sha256_prefix is None:
        m = torch.hub.HASH_REGEX.search(name)  # torch.hub's convention: name-<sha256 prefix>.ext
        sha256_prefix = (m.group(1) or None) if m else None
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            torch.hub.download_url_to_file(url, str(target), hash_prefix=sha256_prefix, progress=False)
        except (URLError, OSError) as e:
            raise CheckpointError(
                f"could not download {url} ({e}). With no network, download the file by hand and either put it at "
                f"{target} or pass its path (pretrained='/path/to/{name}')."
            ) from None
        except RuntimeError as e:  # torch.hub's hash mismatch
            raise CheckpointError(f"{url}: {e}; the download was discarded") from None
        finally:
            socket.setdefaulttimeout(previous)
    elif sha256_prefix and not _sha256(target).startswith(sha256_prefix):
        raise CheckpointError(
            f"{target} does not match the expected SHA-256 prefix {sha256_prefix}: it is not the official file or is "
            "damaged. Delete it and download it again."
        )
    return target


def read_checkpoint(
    source: str | os.PathLike | Mapping[str, Tensor],
    *,
    file_name: str | None = None,
    sha256_prefix: str | None = None,
    cache_dir: str | None = None,
) -> dict[str, Tensor]:
    """A flat state_dict from a path, an http(s):// or file:// URL (through torch.hub's cache, hash-checked), or an
    in-memory dict; wrappers (``state_dict``, ``model``) and ``module.`` prefixes are removed."""
    if isinstance(source, Mapping):
        obj = source
    else:
        text = os.fspath(source)
        if urlparse(text).scheme in ("http", "https", "file"):
            obj = read_torch_file(_download(text, file_name, sha256_prefix, cache_dir))
        else:
            obj = read_torch_file(text)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        where = "the checkpoint" if isinstance(source, Mapping) else os.fspath(source)
        raise CheckpointError(f"{where} does not hold a state_dict (a mapping of names to tensors)")
    state = dict(obj)
    while state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _count(keys: list) -> str:
    return f"{len(keys)} key{'' if len(keys) == 1 else 's'}"


def _group(keys) -> list[str]:
    """Collapse block indices so that 'layer3.4.bn1.weight' and 'layer3.5.bn1.weight' count as one pattern."""
    groups: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        groups[re.sub(r"\.\d+\.", ".*.", k)].append(k)
    lines = [f"  {pattern}  ({_count(ks)}, e.g. {ks[0]})" for pattern, ks in groups.items()]
    if len(lines) > 12:
        lines = lines[:12] + [f"  ... and {len(lines) - 12} more patterns"]
    return lines


def fit_state_dict(model: nn.Module, state: Mapping[str, Tensor], skip: tuple[str, ...] = ()) -> dict[str, Tensor]:
    """Rename an official (or our own) state_dict to ``model``'s key names and check that it fits exactly.

    Keys starting with a prefix in ``skip`` (our names) are left out of the check. A misfit raises a
    CheckpointError listing missing, unexpected and mis-shaped keys, grouped by pattern, under the names the
    checkpoint itself uses. A model that has no official names (any other timm or torch model) is checked under
    its own names.
    """
    if getattr(model, "official_key_rules", None) is None:
        ours = {k: k for k in model.state_dict()}
    else:
        ours = official_key_map(model)
    in_our_names = bool(set(state) & set(ours)) and not set(state) & (set(ours.values()) - set(ours))
    if in_our_names:
        renamed, shown = dict(state), {}
    else:
        back = {official: key for key, official in ours.items()}
        renamed, shown = {back.get(k, k): v for k, v in state.items()}, ours
    expected = {k: v.shape for k, v in model.state_dict().items() if not k.startswith(skip)}
    given = {k: v for k, v in renamed.items() if not k.startswith(skip)}
    missing = [shown.get(k, k) for k in expected if k not in given]
    unexpected = [shown.get(k, k) for k in given if k not in expected]
    wrong = [
        f"{shown.get(k, k)}: checkpoint {tuple(given[k].shape)} vs model {tuple(expected[k])}"
        for k in expected
        if k in given and given[k].shape != expected[k]
    ]
    if not (missing or unexpected or wrong):
        return renamed
    parts = [f"the checkpoint does not fit {type(model).__name__}:"]
    if missing:
        parts += [f"missing ({_count(missing)} the model needs):", *_group(missing)]
    if unexpected:
        parts += [f"unexpected ({_count(unexpected)} the model does not have):", *_group(unexpected)]
    if wrong:
        parts += [f"wrong shape ({_count(wrong)}):", *("  " + w for w in wrong[:12])]
        if len(wrong) > 12:
            parts.append(f"  ... and {len(wrong) - 12} more")
    parts.append("Is it a checkpoint of this model variant (depth, v1d or not, num_classes, in_chans)?")
    raise CheckpointError("\n".join(parts))


def load_official_checkpoint(
    model: nn.Module,
    source: str | os.PathLike | Mapping[str, Tensor],
    *,
    sha256_prefix: str | None = None,
    cache_dir: str | None = None,
) -> nn.Module:
    """Load an official (or our own) checkpoint into ``model`` strictly: every key used, every tensor filled.

    Args:
        model: an adaptconv SCNet or RedNet classifier (official or our key names), or any other model (its own
            key names).
        source: a file path, an http(s):// or file:// URL (downloaded into torch.hub's cache; a hash in the file
            name, ``name-<sha256 prefix>.pth``, or ``sha256_prefix`` is checked), or a state_dict.
        sha256_prefix: expected start of the file's SHA-256.
        cache_dir: where downloads go instead of ``<torch.hub dir>/checkpoints``.

    Returns:
        ``model``, with the weights loaded.
    """
    state = read_checkpoint(source, sha256_prefix=sha256_prefix, cache_dir=cache_dir)
    try:
        state = fit_state_dict(model, state)
    except CheckpointError as e:
        if isinstance(source, Mapping):
            raise
        raise CheckpointError(f"{os.fspath(source)}: {e}") from None
    model.load_state_dict(state, strict=True)
    return model
