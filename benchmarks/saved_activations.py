"""Memory a training step keeps for backward, per model against its ResNet baseline (any device, CPU included).

    python benchmarks/saved_activations.py [--models rednet50 rednet50+fused ...] [--batch 4] [--dtype bf16]

Counts the bytes of the distinct tensors autograd saves in one forward pass in training mode under autocast
(``adaptconv.benchmark.saved_activation_bytes``) at batch B and 2B: the difference over B is what each image adds
(the activations), free of what does not grow with the batch (autocast's low-precision copies of the weights);
also for the stem alone (the modules before ``layer1``).
At training batch sizes this dominates peak memory. ``NAME+fused`` is the model with fused involution kernel
generation, ``+recompute`` recomputes the stem in the backward pass. Writes
benchmarks/results/saved_activations.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import itertools
import json

import torch
import torch.nn as nn
from _common import RESULTS, markdown_table

from adaptconv.benchmark import DTYPES, baseline_for, environment, saved_bytes_per_image
from adaptconv.benchmark.harness import create

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--dtype", choices=list(DTYPES), default="bf16")
    args = ap.parse_args()
    dtype = DTYPES[args.dtype]
    cache: dict[str, tuple[float, float]] = {}
    rows = []
    for name in args.models:
        base = baseline_for(name)
        for m in (base, name):
            if m not in cache:
                cache[m] = activation_mib(m, args.batch, args.img_size, dtype)
        (mib, stem), (base_mib, base_stem) = cache[name], cache[base]
        rows.append(dict(model=name, mib_per_image=round(mib, 2), stem_mib_per_image=round(stem, 2), baseline=base,
                         baseline_mib_per_image=round(base_mib, 2), baseline_stem_mib_per_image=round(base_stem, 2),
                         ratio=round(mib / base_mib, 3)))  # fmt: skip
    meta = dict(environment("cpu"), batch=args.batch, img_size=args.img_size, dtype=args.dtype)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "saved_activations.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1) + "\n")
    print(f"saved for backward per image, training forward, {args.img_size}px, {args.dtype} autocast")
    headers = ["model", "MiB per image", "of which stem", "baseline", "baseline MiB per image", "of which stem",
               "ratio"]  # fmt: skip
    print(markdown_table(headers, [list(r.values()) for r in rows]))


if __name__ == "__main__":
    main()
