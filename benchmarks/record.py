"""The result format of every benchmark script: one JSON record a run, and the Markdown tables the scripts print.

A record is ``{device, versions, date, command, commit, cpu_cores, torch_threads, options, <facts>, rows}``:
the device's name, the versions of torch, triton, timm, torchvision, CUDA and Python, the UTC date, the exact
command (as typed at the repository root), the git commit of the checkout (``None`` outside one), the script's
options (its flags, less ``--output``: no paths of the machine), what the run measured besides its rows (e.g. the
copy bandwidth) and the rows. It goes to ``<output>/<script>[-<part>...][-<name>]-<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from adaptconv.benchmark import baseline_for, environment

T = TypeVar("T")

__all__ = ["VERSIONS", "against_baselines", "git_commit", "load", "make", "markdown_table", "path", "write"]

#: the library versions a record carries (``cuda``: the CUDA that PyTorch was built with, on CUDA runs)
VERSIONS = ("torch", "triton", "timm", "torchvision", "cuda", "python")
ROOT = Path(__file__).resolve().parents[1]
#: options that are not options of the measurement: where the file goes, and the parser's own bookkeeping
NOT_OPTIONS = ("output", "script", "command")


def git_commit(root: Path = ROOT) -> str | None:
    """The commit checked out at ``root`` (``$BENCHMARK_COMMIT`` where a copy of the tree runs without its history,
    as on a remote machine); ``None`` outside a git checkout or without git."""
    if os.environ.get("BENCHMARK_COMMIT"):
        return os.environ["BENCHMARK_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def make(args: argparse.Namespace, device: str, rows: list[dict], **facts: object) -> dict:
    """The record of one run: ``args`` from a :func:`benchmarks.flags.parser` (its command and options), the device
    it ran on (``"cuda"``, ``"cpu"``), its rows and ``facts`` (what else it measured)."""
    env = environment(device)
    head = dict(device=env.pop("device"), versions={k: env.pop(k) for k in VERSIONS}, date=env.pop("date"),
                command=args.command, commit=git_commit(), **env,
                options={k: v for k, v in vars(args).items() if k not in NOT_OPTIONS})  # fmt: skip
    clash = head.keys() & facts.keys() | {"rows"} & facts.keys()
    if clash:
        raise ValueError(f"facts may not replace the record's own keys: {sorted(clash)}")
    return {**head, **facts, "rows": rows}


def write(args: argparse.Namespace, device: str, rows: list[dict], parts: tuple[str, ...] = (),
          **facts: object) -> Path:  # fmt: skip
    """Write :func:`make`'s record to :func:`path`; the path."""
    file = path(args, device, parts)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(make(args, device, rows, **facts), indent=1, default=str) + "\n")  # str: paths
    return file


def path(args: argparse.Namespace, device: str, parts: tuple[str, ...] = ()) -> Path:
    """Where :func:`write` puts a record: ``args.output/<script>[-<parts>][-<args.name>]-<device>.json``."""
    stem = "-".join(p for p in (args.script, *parts, args.name, device) if p)
    return Path(args.output) / f"{stem}.json"


def load(path: Path) -> dict:
    """A results file as a record: this format as it is; the older ``{meta, rows}`` files of ``results/`` (kept as
    they were written) with their ``meta`` keys at the top."""
    data = json.loads(Path(path).read_text())
    if "meta" in data:
        return {**data["meta"], "rows": data["rows"]}
    return data


def markdown_table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table: one header line, one line a row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row) + " |" for row in rows)])


def against_baselines(models: Iterable[str], measure: Callable[[str], T]) -> Iterator[tuple[str, str, T, T]]:
    """(model, its baseline, the model's measurement, the baseline's) for each model, measuring each name once
    (several models share a baseline)."""
    cache: dict[str, T] = {}
    for name in models:
        base = baseline_for(name)
        for m in (base, name):
            if m not in cache:
                cache[m] = measure(m)
        yield name, base, cache[name], cache[base]
