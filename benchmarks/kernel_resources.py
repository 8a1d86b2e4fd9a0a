"""Registers, spills and machine-instruction mix of the involution's Triton kernels for an H100, without a GPU.

Each kernel is compiled for sm_90a with exactly the arguments its launcher passes at one of RedNet-50's layer shapes
(the launcher runs on CPU tensors with the kernel replaced by a recorder), once for every tuning configuration,
and the resulting machine code is read with the tools that ship with Triton (ptxas, cuobjdump):

    python benchmarks/kernel_resources.py [--layer layer1] [--batch 64] [--dtype bfloat16] [--layout channels_last]
                                          [--family band]

Static counts, not timings: they say whether a configuration spills to local memory and how much of the code is
index arithmetic (IMAD, ISETP, LOP3, ...), cross-thread shuffles (SHFL), loads (LDG) and floating-point work
(FFMA, FMUL, FADD), tensor-core instructions (HMMA, HGMMA), shared-memory stores (STS) and barriers (BAR), for the
whole kernel and for the body of each loop (the innermost runs once per kernel row),
which is what to look at before spending device time (numbers differ between Triton versions). Writes
benchmarks/results/kernel_resources-<layer>-<layout>[-<family>]-sm90.json and prints a table.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import tempfile
from pathlib import Path

import torch
import triton
from _common import RESULTS, markdown_table, write_results
from involution_op import LAYERS, layer_case
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from adaptconv.ops import involution_triton

TARGET = GPUTarget("cuda", 90, 32)
BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
_TRITON_DTYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


class _Recorder:
    """Stands in for an autotuned kernel: ``kernel[grid](*args, **kwargs)`` records the call instead of launching."""

    def __init__(self, kernel):
        self.kernel, self.calls = kernel, []

    def __getitem__(self, grid):
        return lambda *args, **kwargs: self.calls.append((args, kwargs))


def recorded_calls(layer: str, batch: int, dtype: torch.dtype, layout: str, family: str | None = None) -> dict:
    """The arguments each kernel gets from its launcher at ``layer``'s shape, and the configurations its autotuner
    chooses from on a GPU: {name: (autotuner, args, kwargs, configs)}. ``family``: as the launchers take it (None:
    the default for the layout)."""
    x, w, gy, conf = layer_case(layer, batch, dtype, layout, "cpu", fill=torch.empty)
    family = involution_triton._family(x, w, conf[0], conf[1], conf[3], None, family)
    module = involution_triton.kernel_module(family)
    names = module.KERNELS
    recorders = {name: _Recorder(getattr(module, name)) for name in names}
    saved = {name: getattr(module, name) for name in names}
    try:
        for name, rec in recorders.items():
            setattr(module, name, rec)
        involution_triton.involution_aggregate_triton(x, w, *conf, family=family)
        involution_triton.involution_aggregate_backward_triton(gy, x, w, *conf, family=family)
    finally:
        for name, kernel in saved.items():
            setattr(module, name, kernel)
    family_name = {"band": "band", "pixel": "pixel-block", "tile": "spatial-tile"}[family]
    return {f"{family_name} {name}": (rec.kernel, *rec.calls[0], module.GPU_CONFIGS) for name, rec in recorders.items()}


def compile_config(autotuner, args: tuple, kwargs: dict, config: triton.Config) -> tuple[str, str]:
    """(ptxas report, SASS) of one configuration, with Triton's own specialisation of the arguments: integers equal
    to 1 become constants, integers and pointers divisible by 16 are marked so."""
    fn = autotuner.fn
    values = dict(zip(fn.arg_names, args, strict=False)) | kwargs | config.kwargs
    if isinstance(fn, triton.runtime.Heuristics):  # compile-time arguments derived from the others
        values |= {name: rule(values) for name, rule in fn.values.items()}
        fn = fn.fn
    signature, constexprs, attrs = {}, {}, {}
    for i, param in enumerate(fn.params):
        v = values[param.name]
        if param.is_constexpr or (isinstance(v, int) and not isinstance(v, bool) and v == 1):
            signature[param.name], constexprs[(i,)] = "constexpr", v
        elif isinstance(v, torch.Tensor):
            signature[param.name] = "*" + _TRITON_DTYPES[v.dtype]
            attrs[(i,)] = [["tt.divisibility", 16]]  # the caching allocator's blocks are aligned
        else:
            signature[param.name] = "i32"
            if v % 16 == 0:
                attrs[(i,)] = [["tt.divisibility", 16]]
    compiled = triton.compile(ASTSource(fn, signature, constexprs, attrs), target=TARGET,
                              options=dict(num_warps=config.num_warps, num_stages=config.num_stages))  # fmt: skip
    with tempfile.TemporaryDirectory() as d:
        ptx, cubin = os.path.join(d, "k.ptx"), os.path.join(d, "k.cubin")
        Path(ptx).write_text(compiled.asm["ptx"])
        report = subprocess.run([BIN / "ptxas", "-arch=sm_90a", "-v", ptx, "-o", cubin], capture_output=True,
                                text=True, check=True).stderr  # fmt: skip
        sass = subprocess.run([BIN / "cuobjdump", "-sass", cubin], capture_output=True, text=True, check=True).stdout
    return report, sass


_INTEGER = ("IMAD", "ISETP", "LOP3", "VIADD", "IADD3", "LEA", "SEL", "SHF", "IABS", "P2R")


def _mix(ops: list[str]) -> dict:
    c = collections.Counter(op.split(".")[0] for op in ops)
    return dict(instructions=len(ops), integer=sum(c[o] for o in _INTEGER), loads=c["LDG"] + c["LDS"] + c["LDL"],
                float=c["FFMA"] + c["FMUL"] + c["FADD"], shuffles=c["SHFL"], mma=c["HMMA"] + c["HGMMA"],
                shared_stores=c["STS"], barriers=c["BAR"])  # fmt: skip


def summarise(report: str, sass: str) -> dict:
    """Registers and spills from ptxas; the instruction mix of the whole kernel and of each loop body (a backward
    branch's range, innermost first: what runs per kernel row or channel chunk)."""
    regs = re.search(r"Used (\d+) registers", report)
    spill = re.search(r"(\d+) bytes spill stores", report)
    code = [(int(a, 16), op, rest) for a, op, rest in
            re.findall(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);", sass)]  # fmt: skip
    loops = []
    for addr, op, rest in code:
        target = re.match(r"\s*(0x[0-9a-f]+)", rest)
        if op.startswith("BRA") and target and int(target.group(1), 16) < addr:
            loops.append(_mix([o for a, o, _ in code if int(target.group(1), 16) <= a <= addr]))
    return dict(registers=int(regs.group(1)) if regs else None, spill_bytes=int(spill.group(1)) if spill else 0,
                **_mix([op for _, op, _ in code]), loops=sorted(loops, key=lambda m: m["instructions"]))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", default="layer1", choices=list(LAYERS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--layout", default="channels_last", choices=["contiguous", "channels_last"])
    ap.add_argument("--family", choices=involution_triton.FAMILIES, help="default: the layout's")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows = []
    calls = recorded_calls(args.layer, args.batch, getattr(torch, args.dtype), args.layout, args.family)
    for kernel, (autotuner, kargs, kwargs, configs) in calls.items():
        for config in configs:
            cfg = dict(config.kwargs, num_warps=config.num_warps)
            rows.append(dict(kernel=kernel, config=cfg, **summarise(*compile_config(autotuner, kargs, kwargs, config))))
    meta = dict(triton=triton.__version__, torch=torch.__version__, target="sm_90a", layer=args.layer,
                shape=dict(zip(("C", "H", "K", "stride"), LAYERS[args.layer], strict=True)), batch=args.batch,
                dtype=args.dtype, layout=args.layout)  # fmt: skip
    meta["family"] = args.family
    suffix = f"-{args.family}" if args.family else ""
    path = write_results(f"kernel_resources-{args.layer}-{args.layout}{suffix}", "sm90", meta, rows, args.out)
    print(f"triton {triton.__version__}, sm_90a, {args.layer} {meta['shape']}, batch {args.batch}, {args.dtype}, "
          f"{args.layout}; written to {path}")  # fmt: skip
    headers = ["kernel", "config", "registers", "spill bytes", "instructions", "float", "shuffles",
               "inner loop: instructions", "float", "shuffles", "loads"]  # fmt: skip
    table = []
    for r in rows:
        inner = r["loops"][0] if r["loops"] else dict.fromkeys(("instructions", "float", "shuffles", "loads"), "-")
        table.append([r["kernel"], " ".join(f"{k}={v}" for k, v in r["config"].items()), r["registers"],
                      r["spill_bytes"], r["instructions"], r["float"], r["shuffles"], inner["instructions"],
                      inner["float"], inner["shuffles"], inner["loads"]])  # fmt: skip
    print(markdown_table(headers, table))


if __name__ == "__main__":
    main()
