"""The flag vocabulary of the benchmark scripts: one spelling, meaning and type per concept, as ``adaptconv benchmark``
spells them where it has the concept.

    --output DIR      where the results go (default benchmarks/results)
    --name SUFFIX     suffix of the results file's name: <script>[-<part>...]-<SUFFIX>-<device>.json
    --models M ...    model names (ours or timm's; +VARIANT suffixes as in ``adaptconv benchmark``)
    --task T          train, inference
    --mode M          eager, compile, reduce-overhead
    --batch-size N    images a batch
    --img-size N      image side in pixels
    --dtype D         fp32, bf16, fp16 (the tensors' dtype, or autocast's in a model step)
    --layout L        nchw, channels_last
    --device D        cuda, cpu (default: cuda where there is one)
    --repeats N       timed runs, median reported
    --warmup N        untimed runs first

A script asks :func:`parser` for the flags it has, each with its default; a list default makes the flag take
several values. Its own flags (``--layers``, ``--levels``, ...) it adds to the parser.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from adaptconv.benchmark import DTYPES, LAYOUTS, MODES, TASKS

__all__ = ["FLAGS", "RESULTS", "TORCH_DTYPES", "Parser", "default_device", "parser"]

RESULTS = Path(__file__).resolve().parent / "results"

#: ``--dtype``'s names as tensor dtypes
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: the vocabulary: flag (as a keyword) -> ``add_argument``'s options other than ``default`` and ``nargs``
FLAGS: dict[str, dict] = {
    "models": dict(metavar="MODEL", help="model names (ours or timm's), with +VARIANT suffixes"),
    "task": dict(choices=TASKS),
    "mode": dict(choices=MODES, help="eager, torch.compile, or torch.compile with CUDA graphs"),
    "batch_size": dict(type=int, metavar="N", help="images a batch"),
    "img_size": dict(type=int, metavar="N", help="image side in pixels"),
    "dtype": dict(choices=list(DTYPES)),
    "layout": dict(choices=list(LAYOUTS)),
    "device": dict(choices=["cuda", "cpu"]),
    "repeats": dict(type=int, metavar="N", help="timed runs, median reported"),
    "warmup": dict(type=int, metavar="N", help="untimed runs first"),
}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Parser(argparse.ArgumentParser):
    """An argument parser that records, in the parsed arguments, the script (``script``) and the exact command line
    that ran it (``command``), for the results record (``record.py``)."""

    def __init__(self, script: str, **kwargs) -> None:
        super().__init__(prog=f"python -m benchmarks.{script}", **kwargs)
        self.script = script

    def parse_args(self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None):
        argv = list(sys.argv[1:] if args is None else args)
        parsed = super().parse_args(argv, namespace)
        parsed.script, parsed.command = self.script, shlex.join(["python", "-m", f"benchmarks.{self.script}", *argv])
        return parsed


def parser(script: str, description: str, results: bool = True, **defaults: object) -> Parser:
    """The parser of ``benchmarks/<script>.py``: ``--output`` and ``--name`` (where ``results``: the script writes a
    record) and the flags of :data:`FLAGS` named in ``defaults``, each with its default (a list: several values)."""
    p = Parser(script, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, default in defaults.items():
        nargs = "+" if isinstance(default, list) else None
        p.add_argument("--" + flag.replace("_", "-"), default=default, nargs=nargs, **FLAGS[flag])
    if results:
        p.add_argument("--output", type=Path, default=RESULTS, metavar="DIR",
                       help="where the results go (default benchmarks/results)")  # fmt: skip
        p.add_argument("--name", default="", metavar="SUFFIX", help="suffix of the results file's name")
    return p
