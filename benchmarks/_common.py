"""Helpers the benchmark scripts share: the aggregation implementations, timing, the environment, the output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import torch

from adaptconv.ops import involution_aggregate_unfold, involution_triton
from adaptconv.ops.involution_aggregate import involution_aggregate_backward_reference, involution_aggregate_reference

RESULTS = Path(__file__).parent / "results"

#: implementations of the aggregation that can be timed: forward and (gradient, x, weight, conf) -> (gx, gw)
IMPLEMENTATIONS = {
    "reference": (involution_aggregate_reference, involution_aggregate_backward_reference),
    "triton": (involution_triton.involution_aggregate_triton, involution_triton.involution_aggregate_backward_triton),
    "unfold": (involution_aggregate_unfold, None),  # its backward is autograd's
}
# One family of Triton kernels, whatever the dispatch would choose (the band family takes float16/bfloat16 only).
IMPLEMENTATIONS |= {
    f"triton-{family}": tuple(functools.partial(f, family=family) for f in IMPLEMENTATIONS["triton"])
    for family in involution_triton.FAMILIES
}


def aggregation_step(impl: str, x: torch.Tensor, weight: torch.Tensor, conf: tuple, backward: bool) -> Callable:
    """A function that runs one forward (and backward) pass of ``impl`` on fixed inputs; the gradient is made here."""
    forward, backward_fn = IMPLEMENTATIONS[impl]
    with torch.no_grad():
        grad = torch.randn_like(forward(x, weight, *conf)) if backward else None

    def step() -> None:
        if not backward:
            with torch.no_grad():
                forward(x, weight, *conf)
        elif backward_fn is not None:
            forward(x, weight, *conf)
            backward_fn(grad, x, weight, *conf)
        else:
            xg, wg = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
            torch.autograd.grad(forward(xg, wg, *conf), (xg, wg), grad)

    return step


def write_results(name: str, device: str, meta: dict, rows: list[dict], out: Path = RESULTS) -> Path:
    """Write ``{meta, rows}`` to ``out/<name>-<device>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}-{device}.json"
    path.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    return path


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join([*lines, *("| " + " | ".join(str(v) for v in row) + " |" for row in rows)])
