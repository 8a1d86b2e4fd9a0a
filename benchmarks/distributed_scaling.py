"""Training throughput on 1, 2, 4, 8 GPUs with DDP (NCCL; gloo processes on the CPU), each GPU count launched by
torchrun in a fresh process group, and where the time of a step goes.

    python -m benchmarks.distributed_scaling --models rednet50 scnet50 --batch-size 128 [--gpus 1 2] \\
        [--data synthetic | npz:PATH] [--img-size 224] [--dtype bf16] [--layout channels_last]

For each GPU count (default 1, 2, 4, ... up to the GPUs present; on the CPU, processes) one ``torchrun
--standalone --nproc_per_node=N`` runs every model: ``--warmup`` untimed steps, then ``--repeats`` timed steps of
forward, backward with DDP's gradient all-reduce, and SGD update at ``--batch-size`` images per GPU, bracketed by
barriers (the slowest rank sets the time). Rows: images/s over all GPUs, the speed-up over 1 GPU and the scaling
efficiency (img/s at N / (N x img/s at 1)); the same steps under DDP's ``no_sync`` (no all-reduce), whose difference
is the all-reduce's cost left uncovered by the backward pass; with ``--data npz:PATH`` the batches come from a
:class:`~adaptconv.data.DeviceLoader` (translation, flip) and the time to build one batch alone is the input
pipeline's share (``synthetic``: random batches made ahead, no input cost). NVLink multicast stays off
(``NCCL_NVLS_ENABLE=0`` and the like, unless set already).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from adaptconv.benchmark.harness import LAYOUTS, create

from . import flags, record

#: NVLink multicast off in NCCL, PyTorch's symmetric memory and NVSHMEM (a shared host's GPUs can be put out of
#: service by it); a value already set is kept
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("distributed_scaling", __doc__, models=["rednet50", "scnet50"], batch_size=128, img_size=224,
                      dtype="bf16", layout="channels_last", device=flags.default_device(), repeats=30,
                      warmup=10)  # fmt: skip
    ap.add_argument("--gpus", type=int, nargs="+", default=None, metavar="N",
                    help="GPU counts (processes on the CPU); default 1, 2, 4, ... up to the GPUs present")  # fmt: skip
    ap.add_argument("--data", default="synthetic", metavar="SOURCE",
                    help="'synthetic' (random batches on the device) or 'npz:PATH' (DeviceLoader of the training "
                         "split)")  # fmt: skip
    ap.add_argument("--num-classes", type=int, default=1000, metavar="N", help="classes of the synthetic data")
    ap.add_argument("--timeout", type=float, default=None, metavar="S",
                    help="end a launch (one GPU count) that runs over S seconds; the others are kept")  # fmt: skip
    ap.add_argument("--worker-out", type=Path, default=None, help=argparse.SUPPRESS)  # set by the launch itself
    return ap


def gpu_counts(args: argparse.Namespace) -> list[int]:
    """``--gpus``, or 1, 2, 4, ... up to the GPUs present (1 and 2 on the CPU)."""
    if args.gpus:
        return args.gpus
    have = torch.cuda.device_count() if args.device == "cuda" else 2
    return [n for n in (1, 2, 4, 8, 16) if n <= have] or [1]


def launch_env(device: str = "cuda") -> dict[str, str]:
    """This process's environment with NVLink multicast off (values set already are kept) and unbuffered output; on
    the CPU one thread a process, whatever the number of processes (torchrun sets it for 2 or more only)."""
    env = {**NO_MULTICAST, **os.environ, "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env["OMP_NUM_THREADS"] = "1"
    return env


# ---------------------------------------------------------------------------------------------------------------
# the worker: one process of a torchrun launch


def _batches(
    args: argparse.Namespace, device: torch.device, world: int, rank: int, layout
) -> tuple[Iterator, Callable | None, int, int]:
    """Training batches of this rank, a function that builds one batch alone (None for synthetic data), and the
    numbers of classes and of input channels."""
    if args.data == "synthetic":
        g = torch.Generator().manual_seed(rank)
        sets = [(torch.randn(args.batch_size, 3, args.img_size, args.img_size, generator=g),
                 torch.randint(args.num_classes, (args.batch_size,), generator=g)) for _ in range(3)]  # fmt: skip
        sets = [(x.to(device, memory_format=layout), y.to(device)) for x, y in sets]

        def cycle() -> Iterator:
            while True:
                yield from sets

        return cycle(), None, args.num_classes, 3
    from adaptconv.data import DeviceAugment, DeviceLoader, open_source

    if not args.data.startswith("npz:"):
        raise SystemExit(f"--data: 'synthetic' or 'npz:PATH', not {args.data!r}")
    source = open_source(None, args.data)
    size = args.img_size
    augment = DeviceAugment(size=size, translate=max(1, size // 8), flip=True)
    loader = DeviceLoader(source.train, device, args.batch_size, (0.5,) * source.in_chans, (0.25,) * source.in_chans,
                          augment, seed=0, num_replicas=world, rank=rank,
                          channels_last=layout is torch.channels_last)  # fmt: skip

    def cycle() -> Iterator:
        epoch = 0
        while True:
            loader.set_epoch(epoch)
            for x, y, _ in loader:
                yield x, y
            epoch += 1

    indices = torch.arange(args.batch_size, device=device)
    seeds = torch.arange(args.batch_size, device=device)
    return cycle(), lambda: loader.batch(indices, seeds), source.num_classes, source.in_chans


def _synchronised_seconds(run: Callable[[], None], device: torch.device) -> float:
    """Wall time of ``run`` between barriers of all ranks, the device's queue drained at both ends."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dist.barrier()

    sync()
    start = time.perf_counter()
    run()
    sync()
    return time.perf_counter() - start


def measure_model(args: argparse.Namespace, name: str, device: torch.device, world: int, rank: int) -> dict:
    """One model's timed steps on this rank's device (collective: every rank calls it)."""
    layout = LAYOUTS[args.layout]
    batches, build_one, num_classes, in_chans = _batches(args, device, world, rank, layout)
    torch.manual_seed(0)
    model = create(name, num_classes=num_classes, in_chans=in_chans).to(device, memory_format=layout)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=1e-3, momentum=0.9)
    dtype = flags.TORCH_DTYPES[args.dtype]

    def step(sync: bool) -> None:
        x, y = next(batches)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not torch.float32):
            loss = F.cross_entropy(ddp(x), y)
        if sync:
            loss.backward()
        else:
            with ddp.no_sync():
                loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def steps(n: int, sync: bool) -> Callable[[], None]:
        return lambda: [step(sync) for _ in range(n)]

    _synchronised_seconds(steps(args.warmup, True), device)
    step_s = _synchronised_seconds(steps(args.repeats, True), device) / args.repeats
    no_sync_s = _synchronised_seconds(steps(args.repeats, False), device) / args.repeats
    input_s = None
    if build_one is not None:
        input_s = _synchronised_seconds(lambda: [build_one() for _ in range(args.repeats)], device) / args.repeats
    row = dict(model=name, gpus=world, batch_per_gpu=args.batch_size,
               img_per_s=round(world * args.batch_size / step_s, 1), step_ms=round(step_s * 1e3, 3),
               no_sync_ms=round(no_sync_s * 1e3, 3), allreduce_share=round(max(0.0, 1 - no_sync_s / step_s), 4),
               input_ms=None if input_s is None else round(input_s * 1e3, 3),
               input_share=None if input_s is None else round(input_s / step_s, 4))  # fmt: skip
    return row


def worker(args: argparse.Namespace) -> None:
    """One rank of a torchrun launch: every model measured; rank 0 writes the rows to ``--worker-out``."""
    cuda = args.device == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    try:
        rows = []
        for m in args.models:
            rows.append(measure_model(args, m, device, dist.get_world_size(), dist.get_rank()))
            if cuda:
                torch.cuda.empty_cache()
        if dist.get_rank() == 0:
            args.worker_out.write_text(json.dumps(rows))
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# the driver


def with_efficiency(rows: list[dict]) -> list[dict]:
    """Each row with its speed-up over the same model's 1-GPU row and its scaling efficiency (speed-up / GPUs)."""
    one = {r["model"]: r["img_per_s"] for r in rows if r["gpus"] == 1}
    out = []
    for r in rows:
        speedup = r["img_per_s"] / one[r["model"]] if r["model"] in one else None
        out.append({**r, "speedup": None if speedup is None else round(speedup, 3),
                    "efficiency": None if speedup is None else round(speedup / r["gpus"], 3)})  # fmt: skip
    return out


def torchrun(processes: int) -> list[str]:
    """The command line that starts ``processes`` processes on this machine with torchrun (a module follows)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def launch_count(argv: list[str], n: int, device: str, timeout: float | None = None) -> list[dict]:
    """The rows of one ``torchrun --nproc_per_node=n`` of this script with ``argv``; past ``timeout`` seconds the
    launch and its workers are ended (:class:`subprocess.TimeoutExpired`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        command = [*torchrun(n), "-m", "benchmarks.distributed_scaling", *argv, "--gpus", str(n), "--worker-out",
                   str(out)]  # fmt: skip
        # a session of its own, so that a timeout ends the workers too, not torchrun alone
        proc = subprocess.Popen(command, env=launch_env(device), start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        if code != 0:
            raise subprocess.CalledProcessError(code, command)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> Path | None:
    args = parser().parse_args(argv)
    if args.worker_out is not None:
        worker(args)
        return None
    # the workers see the same measurement flags; the driver alone writes the record
    passed = _without(sys.argv[1:] if argv is None else argv, "--gpus", "--output", "--name", "--timeout")
    rows, failed = [], {}
    for n in gpu_counts(args):
        try:
            rows += launch_count(passed, n, args.device, args.timeout)
        except subprocess.SubprocessError as e:  # keep what the other counts measured
            failed[n] = str(e)
            print(f"{n}: {e}", file=sys.stderr, flush=True)
            continue
        done = ", ".join(f"{r['model']} {r['img_per_s']:.0f} img/s" for r in rows if r["gpus"] == n)
        print(f"{n} {'GPU(s)' if args.device == 'cuda' else 'process(es)'}: {done}", flush=True)
    rows = with_efficiency(rows)
    if rows:
        print(record.markdown_table(list(rows[0]), [list(r.values()) for r in rows]))
    env = {k: os.environ.get(k, v) for k, v in NO_MULTICAST.items()}
    return record.write(args, args.device, rows, gpus_present=torch.cuda.device_count(), multicast_env=env,
                        failed=failed)  # fmt: skip


def _without(argv: list[str], *names: str) -> list[str]:
    """``argv`` less the flags ``names`` and their values (``--flag V ...`` up to the next flag, or ``--flag=V``)."""
    out, skipping = [], False
    for a in argv:
        if a.startswith("--"):
            skipping = a.split("=")[0] in names
            if skipping:
                continue
        elif skipping:
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    main()
