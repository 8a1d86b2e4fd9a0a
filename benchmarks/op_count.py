"""How many operators a training step dispatches, per model against its ResNet baseline (on a CPU: no GPU needed).

    python -m benchmarks.op_count [--models scnet50 scnet50+recompute_calibration rednet50] [--dtype bf16]

An eager training step on a GPU waits on the host when its kernels are short: every operator costs the host its
dispatch (autograd, autocast, the launch) whatever its size. This counts the operators that reach PyTorch's
dispatcher in one forward (under autocast, channels_last, training mode) and in its backward, with a
``TorchDispatchMode``: the same on any device, and a proxy for that host cost. ``detach`` (autograd's bookkeeping,
no kernel) is counted apart. Writes benchmarks/results/op_count[-<name>]-cpu.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from adaptconv.benchmark import DTYPES
from adaptconv.benchmark.harness import create

from . import flags, record

#: operators with no kernel behind them, counted apart
BOOKKEEPING = {"aten.detach"}


class _Counting(TorchDispatchMode):
    """Counts every operator that reaches the dispatcher while it is active, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def count_step(name: str, batch: int, size: int, dtype: torch.dtype | None) -> dict[str, Counter[str]]:
    """The operators of one training forward and its backward for model ``name`` (channels_last, training mode,
    autocast to ``dtype`` where given)."""
    torch.manual_seed(0)
    model = create(name, num_classes=1000).train().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
    with _Counting() as forward, torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = model(x).float().sum()
    with _Counting() as backward:
        loss.backward()
    return {"forward": forward.counts, "backward": backward.counts}


def _split(counts: Counter[str]) -> tuple[int, int]:
    """(operators with kernels, bookkeeping operators)."""
    books = sum(n for op, n in counts.items() if op in BOOKKEEPING)
    return sum(counts.values()) - books, books


def parser() -> argparse.ArgumentParser:
    return flags.parser("op_count", __doc__, models=["scnet50", "scnet50+recompute_calibration", "rednet50"],
                        batch_size=2, img_size=64, dtype="bf16")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    dtype = DTYPES[args.dtype]
    rows = []
    measure = lambda m: count_step(m, args.batch_size, args.img_size, dtype)  # noqa: E731
    for name, base, counts, base_counts in record.against_baselines(args.models, measure):
        row = dict(model=name, baseline=base)
        for part in ("forward", "backward"):
            (ops, books), (base_ops, base_books) = _split(counts[part]), _split(base_counts[part])
            row.update({f"{part}_ops": ops, f"{part}_bookkeeping": books, f"baseline_{part}_ops": base_ops,
                        f"baseline_{part}_bookkeeping": base_books,
                        f"{part}_ratio": round(ops / base_ops, 3)})  # fmt: skip
        row["step_ratio"] = round((row["forward_ops"] + row["backward_ops"]) /
                                  (row["baseline_forward_ops"] + row["baseline_backward_ops"]), 3)  # fmt: skip
        row["top_operators"] = dict((counts["forward"] + counts["backward"]).most_common(12))
        rows.append(row)
    path = record.write(args, "cpu", rows)
    print(f"operators of a training step, {args.img_size}px, batch {args.batch_size}, {args.dtype} -> {path}")
    headers = ["model", "forward ops", "backward ops", "baseline", "baseline forward", "baseline backward", "step ×"]
    print(record.markdown_table(headers, [[r["model"], r["forward_ops"], r["backward_ops"], r["baseline"],
                                           r["baseline_forward_ops"], r["baseline_backward_ops"], r["step_ratio"]]
                                          for r in rows]))  # fmt: skip


if __name__ == "__main__":
    main()
