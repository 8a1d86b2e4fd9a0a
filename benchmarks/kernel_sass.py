"""The machine code of the NVRTC-compiled aggregation kernels, read on any machine (no GPU needed).

    python -m benchmarks.kernel_sass [--dtype bf16 fp32] [--kernel-size 7] [--stride 1] [--arch sm_90]

Compiles each specialisation's module with NVRTC (as the launchers do), disassembles it with the ``cuobjdump`` that
ships with Triton, and reports per entry point: registers and spill bytes (ptxas), the compile time of the whole
module, the instruction count, and for each loop (a backward branch) its length and its multiply-adds, global and
shared-memory loads, shuffles and convergence barriers (``BSSY``). Writes
benchmarks/results/kernel_sass[-<name>]-cpu.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import triton

from adaptconv.ops import nvrtc
from adaptconv.ops.involution import nvrtc_channels_last as launcher

from . import flags, record

#: the instruction kinds counted in each loop
KINDS = ("FFMA", "LDG", "LDS", "STS", "SHFL", "BSSY", "BRA")
_INSTRUCTION = re.compile(r"/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)[^;]*;")


def cuobjdump() -> Path:
    """Triton's copy of NVIDIA's cuobjdump."""
    return Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def instructions(sass: str) -> list[tuple[int, str, str]]:
    """(address, opcode without modifiers, the whole instruction) of a function's SASS listing, in order."""
    return [(int(m.group(1), 16), m.group(2), m.group(0)) for m in _INSTRUCTION.finditer(sass)]


def loops(listing: list[tuple[int, str, str]]) -> list[dict]:
    """Each backward branch's loop: its first and last instruction's index, length and the counts of :data:`KINDS`."""
    index = {address: i for i, (address, _, _) in enumerate(listing)}
    found = []
    for i, (address, opcode, text) in enumerate(listing):
        target = re.search(r"0x([0-9a-f]+)", text.split(opcode, 1)[1]) if opcode == "BRA" else None
        if target and int(target.group(1), 16) < address and int(target.group(1), 16) in index:
            start = index[int(target.group(1), 16)]
            kinds = Counter(op for _, op, _ in listing[start : i + 1])
            found.append(dict(first=start, last=i, instructions=i - start + 1, **{k: kinds[k] for k in KINDS}))
    return found


def analyse(spec: launcher.Specialisation, arch: str) -> list[dict]:
    """One row per entry point of ``spec``'s module compiled for ``arch``."""
    with tempfile.TemporaryDirectory() as cache:  # an empty cache: compiled now, with ptxas's log
        previous = os.environ.get(nvrtc.CACHE_ENV)
        os.environ[nvrtc.CACHE_ENV] = cache
        try:
            start = time.perf_counter()
            compiled = nvrtc.compile_cubin(launcher.source(), spec.defines(), arch)
            compile_s = time.perf_counter() - start
        finally:
            if previous is None:
                del os.environ[nvrtc.CACHE_ENV]
            else:
                os.environ[nvrtc.CACHE_ENV] = previous
    cubin, log = compiled.cubin, compiled.log
    pattern = r"Compiling entry function '(\w+)'[\s\S]*?(\d+) bytes spill stores[\s\S]*?Used (\d+) registers"
    resources = {name: (int(spill), int(regs)) for name, spill, regs in re.findall(pattern, log)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "module.cubin"
        path.write_bytes(cubin)
        for name, (spill, regs) in sorted(resources.items()):
            sass = subprocess.run([str(cuobjdump()), "-sass", "-fun", name, str(path)], capture_output=True,
                                  text=True, check=True).stdout  # fmt: skip
            listing = instructions(sass)
            kinds = Counter(op for _, op, _ in listing)
            rows.append(dict(dtype=str(spec.dtype).removeprefix("torch."), K=spec.kernel_size, stride=spec.stride,
                             dilation=spec.dilation, arch=arch, entry=name, registers=regs, spill_bytes=spill,
                             instructions=len(listing), module_compile_s=round(compile_s, 3),
                             **{k: kinds[k] for k in KINDS}, loops=loops(listing)))  # fmt: skip
    return rows


def parser() -> argparse.ArgumentParser:
    p = flags.parser("kernel_sass", __doc__, dtype=["bf16", "fp32"])
    p.add_argument("--kernel-size", type=int, default=7)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--dilation", type=int, default=1)
    p.add_argument("--arch", default="sm_90", help="NVRTC's target (default sm_90, the H100/H200)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    rows = []
    for dtype in args.dtype:
        spec = launcher.Specialisation(flags.TORCH_DTYPES[dtype], args.kernel_size, args.stride, args.dilation)
        rows += analyse(spec, args.arch)
    path = record.write(args, "cpu", rows)
    print(f"written to {path}")
    table = []
    for r in rows:
        longest = max(r["loops"], key=lambda lp: lp["FFMA"], default=None)
        body = "" if longest is None else f"{longest['instructions']} ({longest['FFMA']} FFMA, {longest['BSSY']} BSSY)"
        table.append([r["dtype"], r["entry"], r["registers"], r["spill_bytes"], r["instructions"], r["FFMA"],
                      r["BSSY"], body, r["module_compile_s"]])  # fmt: skip
    print(record.markdown_table(["dtype", "entry point", "registers", "spill bytes", "instructions", "FFMA", "BSSY",
                                 "main loop", "module compile s"], table))  # fmt: skip


if __name__ == "__main__":
    main()
