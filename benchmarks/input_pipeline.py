"""Does the input pipeline keep a GPU busy? Training img/s of a model fed (a) random batches already on the device,
(b) the real data set by ``DeviceLoader`` (decoded once, kept on the device, augmented there), (c) the real data set
by the worker loader (``DataLoader`` processes that decode and augment every image on the CPU).

    python -m benchmarks.input_pipeline --dataset npz:PATH [--models resnet26 resnet50] [--batch-size 512]
                                        [--img-size 32] [--stem cifar] [--mode eager] [--workers 8]

The step is a whole training step (forward, backward, SGD update) under bf16 autocast, channels_last, on the model
with the small-input stem (``--stem cifar``), as ``adaptconv train --recipe cifar`` runs it; the loaders are the ones
that command builds (``engine.setup.train_loader``): on the device the recipe's augmentation (4-pixel translation,
flip, cutout 12), in the worker processes torchvision's padded crop and flip. Each feed runs ``--warmup`` steps,
then ``--steps`` timed ones (host clock, the device synchronised before and after).
Writes benchmarks/results/input_pipeline[-<name>]-<device>.json.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator
from dataclasses import replace

import torch
import torch.nn as nn

from adaptconv.data import DataSource, open_source, resolve_data_config
from adaptconv.data.datasets import ArrayDataset
from adaptconv.data.device_loading import materialize
from adaptconv.engine.config import TrainConfig, resolve_config
from adaptconv.engine.distributed import DistContext
from adaptconv.engine.setup import train_loader
from adaptconv.models import create_model

from . import flags, record

FEEDS = ("synthetic", "device", "workers")


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("input_pipeline", __doc__, models=["resnet26", "resnet50"], batch_size=512, img_size=32,
                      mode=["eager"], device=flags.default_device(), warmup=15)  # fmt: skip
    ap.add_argument("--dataset", required=True, metavar="npz:PATH", help="the data set: npz:PATH or embedded")
    ap.add_argument("--stem", default="cifar", choices=["imagenet", "cifar"])
    ap.add_argument("--feeds", nargs="+", default=list(FEEDS), choices=FEEDS)
    ap.add_argument("--workers", type=int, default=8, help="processes of the worker loader")
    ap.add_argument("--steps", type=int, default=60, help="timed steps a feed")
    return ap


def batches(feed: str, args: argparse.Namespace, source: DataSource, model: nn.Module) -> Iterator:
    """Endless (images, labels) on the device from ``feed``: random tensors, or the training loader that ``adaptconv
    train --recipe cifar`` builds (``--device-data`` or not) for this model and ``source``."""
    n, size, device = args.batch_size, args.img_size, args.device
    if feed == "synthetic":
        g = torch.Generator().manual_seed(0)
        sets = [(torch.randn(n, source.in_chans, size, size, generator=g).to(device, memory_format=torch.channels_last),
                 torch.randint(source.num_classes, (n,), generator=g).to(device)) for _ in range(3)]  # fmt: skip
        yield from itertools.cycle(sets)
        return
    cfg = resolve_config(TrainConfig(dataset=args.dataset, recipe="cifar", batch_size=n, img_size=size, stem=args.stem,
                                     workers=args.workers, device_data=feed == "device"))  # fmt: skip
    data_cfg = resolve_data_config(source, model.pretrained_cfg, size)
    loader, sampler = train_loader(source, data_cfg, cfg, DistContext(device=torch.device(device)))
    for epoch in itertools.count():
        sampler.set_epoch(epoch)
        for x, y, _ in loader:
            yield x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last), y.to(device)


def img_per_s(model: nn.Module, feed: Iterator, args: argparse.Namespace) -> float:
    """Images a second of ``--steps`` training steps fed by ``feed``, after ``--warmup`` steps."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    gpu = args.device == "cuda"

    def step() -> None:
        x, y = next(feed)
        with torch.autocast(args.device, dtype=torch.bfloat16, enabled=gpu):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(args.warmup):
        step()
    if gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if gpu:
        torch.cuda.synchronize()
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    source = open_source(dataset=args.dataset)
    started = time.perf_counter()
    # decoded once here, so that each model's device loader does not decode the split again
    decoded = replace(source, train=ArrayDataset(*materialize(source.train), source.classes))
    decode_s = time.perf_counter() - started
    rows = []
    for name in args.models:
        for mode in args.mode:
            row = dict(model=name, mode=mode, batch=args.batch_size, img_size=args.img_size, stem=args.stem)
            for feed in args.feeds:
                torch.compiler.reset()
                model = create_model(name, stem=args.stem, num_classes=source.num_classes, in_chans=source.in_chans)
                model = model.to(args.device, memory_format=torch.channels_last).train()
                run = torch.compile(model) if mode == "compile" else model
                feed_batches = batches(feed, args, decoded if feed == "device" else source, model)
                row[f"{feed}_img_s"] = round(img_per_s(run, feed_batches, args), 1)
                print(f"{name} {mode} {feed}: {row[f'{feed}_img_s']:.0f} img/s", flush=True)
            for feed in ("device", "workers"):
                if f"{feed}_img_s" in row and "synthetic_img_s" in row:
                    row[f"{feed}_over_synthetic"] = round(row[f"{feed}_img_s"] / row["synthetic_img_s"], 3)
            rows.append(row)
    headers = ["model", "mode", *(f"{f} img/s" for f in args.feeds), "device / synthetic", "workers / synthetic"]
    table = [[r["model"], r["mode"], *(f"{r[f'{f}_img_s']:.0f}" for f in args.feeds),
              *(str(r.get(f"{f}_over_synthetic", "-")) for f in ("device", "workers"))] for r in rows]  # fmt: skip
    print(record.markdown_table(headers, table))
    dataset = source.name.rsplit("/", 1)[-1]
    print("written to", record.write(args, args.device, rows, dataset=dataset, decode_seconds=round(decode_s, 1)))


if __name__ == "__main__":
    main()
