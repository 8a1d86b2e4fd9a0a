"""Memory a training step keeps for backward, per model against its ResNet baseline (on a CPU: no GPU needed).

    python -m benchmarks.saved_activations [--models rednet50 rednet50+fused ...] [--batch-size 4] [--dtype bf16]

Counts the bytes of the distinct tensors autograd saves in one forward pass in training mode under autocast
(``benchmarks.saved_memory.saved_bytes_per_image``) at batch B and 2B: the difference over B is what each image adds
(the activations), free of what does not grow with the batch (autocast's low-precision copies of the weights);
also for the stem alone (the modules before ``layer1``).
At training batch sizes this dominates peak memory. ``NAME+fused`` is the model with fused involution kernel
generation, ``+recompute`` recomputes the stem in the backward pass. Writes
benchmarks/results/saved_activations[-<name>]-cpu.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools

import torch
import torch.nn as nn

from adaptconv.benchmark import DTYPES
from adaptconv.benchmark.harness import create

from . import flags, record
from .saved_memory import saved_bytes_per_image

MODELS = [f"rednet{depth}{variant}" for depth in (26, 50, 101) for variant in ("", "+fused", "+fused+recompute")]
MODELS.append("scnet50")


def activation_mib(name: str, batch: int, size: int, dtype: torch.dtype | None) -> tuple[float, float]:
    """MiB of saved tensors that one image adds to a training forward pass: the whole model's, and its stem's (the
    modules before ``layer1``)."""
    torch.manual_seed(0)
    model = create(name, num_classes=1000)
    children = dict(model.named_children())
    stem = nn.Sequential(*[children[k] for k in itertools.takewhile(lambda k: k != "layer1", children)])
    whole = saved_bytes_per_image(model, (3, size, size), batch, dtype)
    return whole / 2**20, saved_bytes_per_image(stem, (3, size, size), batch, dtype) / 2**20


def parser() -> argparse.ArgumentParser:
    return flags.parser("saved_activations", __doc__, models=MODELS, batch_size=4, img_size=224, dtype="bf16")


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    dtype = DTYPES[args.dtype]  # autocast's dtype; None: fp32, no autocast
    rows = []
    measure = lambda m: activation_mib(m, args.batch_size, args.img_size, dtype)  # noqa: E731
    for name, base, (mib, stem), (base_mib, base_stem) in record.against_baselines(args.models, measure):
        rows.append(dict(model=name, mib_per_image=round(mib, 2), stem_mib_per_image=round(stem, 2), baseline=base,
                         baseline_mib_per_image=round(base_mib, 2), baseline_stem_mib_per_image=round(base_stem, 2),
                         ratio=round(mib / base_mib, 3)))  # fmt: skip
    path = record.write(args, "cpu", rows)
    print(f"saved for backward per image, training forward, {args.img_size}px, {args.dtype} autocast -> {path}")
    headers = ["model", "MiB per image", "of which stem", "baseline", "baseline MiB per image", "of which stem",
               "ratio"]  # fmt: skip
    print(record.markdown_table(headers, [list(r.values()) for r in rows]))


if __name__ == "__main__":
    main()
