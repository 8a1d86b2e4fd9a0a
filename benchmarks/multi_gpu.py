"""The training command on several GPUs against one GPU, in one call: torchrun and ``--multiprocessing-distributed``
(NCCL DDP), per-epoch equivalence with a one-GPU run, a rank killed mid-epoch and resumed, and the scaling.

    python -m benchmarks.multi_gpu --dataset npz:.carry/cifar10/cifar10_jpeg_q75.npz --output DIR \\
        [--models rednet26 scnet50] [--epochs 2] [--deadline 520] [--parts ...] [-- more train flags]

Every run is ``adaptconv train --recipe cifar --epochs E --seed S`` with the recipe's global batch (``-b`` is the
total of a node, so N GPUs take 1/N each). Parts, in this order (``--parts`` picks some):

- ``reference``: per model, one GPU with seed S (the reference) and at the same time, on another GPU, seed S+1 (the
  run-to-run noise).
- ``torchrun``: per model, ``torchrun --standalone --nproc_per_node=N`` with ``--sync-bn`` (BN over the global
  batch, as on one GPU) and ``--checkpoint-every-steps``, seed S.
- ``spawn``: per model, ``--multiprocessing-distributed --world-size 1 --rank 0 --dist-url tcp://127.0.0.1:PORT``
  without ``--sync-bn`` (each GPU normalises its own share), seed S.
- ``resume``: the first model's torchrun run again, with rank 1 SIGKILLed in the middle of the last epoch (torchrun
  then ends rank 0) and then resumed with ``--resume``; its final weights, momentum and per-epoch results against the
  uninterrupted run's: bit-identical, or the largest relative difference, beside that of the same uninterrupted run
  repeated (run only then: is the N-GPU path deterministic at all?).
- ``scaling``: ``benchmarks.distributed_scaling`` with ``--scaling-flags`` (default RedNet-50 and SCNet-50 at batch
  128 per GPU on 1, 2, 4, ... GPUs up to all of them; 1 and N with ``--gpus N``).

Equivalence (:func:`compare`): per epoch, for the training loss, the validation loss and top-1, the N-GPU run must lie
within ``max(FACTOR x |noise - reference|, FLOOR)`` of the reference. With the same seed the N-GPU run starts from
the same weights and sees the same global batches, but it sums gradients (and, without ``--sync-bn``, normalises) in
another order and GPU kernels are not bit-reproducible, so after a few steps it drifts as far as rounding carries
it: at most as far as a run of another seed. One pair of seeds is one sample of that spread, hence the factor 3,
and the floors guard epochs whose two seeds agree by chance (top-1: 0.5 points, the binomial standard error of an
accuracy near 50% on 10,000 images). Results: ``<output>/multi_gpu[-NAME]-<device>.json`` (written after every
part, so that a call cut short keeps what it finished), the scaling's record beside it, and every run's output in
``<output>/multi_gpu[-NAME]-<device>-log.txt``. NVLink multicast stays off (``distributed_scaling.NO_MULTICAST``).
The training runs use one tile shape a kernel (``ADAPTCONV_AUTOTUNE=0`` unless set): their speed is not what they
measure, and tuning each new shape would take minutes of the call; the scaling part tunes as a user's run does.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from adaptconv.engine.loggers import read_summary

from . import distributed_scaling, flags, record

PARTS = ("reference", "torchrun", "spawn", "resume", "scaling")
METRICS = ("train_loss", "val_loss", "top1")
FACTOR = 3.0
FLOORS = {"train_loss": 0.02, "val_loss": 0.02, "top1": 0.5}
CLI = [sys.executable, "-m", "adaptconv.cli.main"]
STEP_LINE = re.compile(r"epoch (\d+)/(\d+) step (\d+)/(\d+)")


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("multi_gpu", __doc__, models=["rednet26", "scnet50"], device=flags.default_device())
    ap.add_argument("--dataset", required=True, help="'npz:PATH' of the training command")
    ap.add_argument("--recipe", default="cifar", help="the training recipe (default cifar)")
    ap.add_argument("--epochs", type=int, default=2, metavar="E")
    ap.add_argument("--seed", type=int, default=0, metavar="S")
    ap.add_argument("--gpus", type=int, default=None, metavar="N",
                    help="GPUs of the multi-GPU runs (default: all; 2 processes on the CPU)")  # fmt: skip
    ap.add_argument("--checkpoint-every-steps", type=int, default=25, metavar="K")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--deadline", type=float, default=520, metavar="S",
                    help="start no run expected to end after S seconds (expected: the longest run so far)")  # fmt: skip
    ap.add_argument("--scaling-flags", default="--models rednet50 scnet50 --batch-size 128 --repeats 20 --warmup 5",
                    help="flags of benchmarks.distributed_scaling (--device, --gpus, --output: set here)")  # fmt: skip
    ap.add_argument("--run-dir", type=Path, default=Path("output/multi_gpu"), help="where the runs' folders go")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then more flags of adaptconv train")
    return ap


# ---------------------------------------------------------------------------------------------------------------
# comparisons (no GPU needed)


def compare(reference: list[dict], candidate: list[dict], noise: list[dict], factor: float = FACTOR,
            floors: dict[str, float] = FLOORS) -> list[dict]:  # fmt: skip
    """Per epoch and metric of :data:`METRICS`: the candidate run's difference from the reference run, the
    tolerance ``max(factor x |noise - reference|, floor)`` and whether it holds. Each argument is a run's per-epoch
    summary (``read_summary``); epochs missing from any of the three are left out."""
    rows = []
    for ref, cand, other in zip(reference, candidate, noise, strict=False):
        for metric in METRICS:
            difference = abs(cand[metric] - ref[metric])
            spread = abs(other[metric] - ref[metric])
            tolerance = max(factor * spread, floors[metric])
            rows.append(dict(epoch=int(ref["epoch"]), metric=metric, reference=ref[metric], candidate=cand[metric],
                             difference=round(difference, 6), noise=round(spread, 6),
                             tolerance=round(tolerance, 6), ok=difference <= tolerance))  # fmt: skip
    return rows


def checkpoint_differences(a: Path, b: Path) -> dict[str, float]:
    """|b - a| / |a| of every floating-point weight and SGD momentum buffer of two training checkpoints; an integer
    tensor (a BN's batch count) that differs counts as 1."""
    wa, wb = (_weights(torch.load(p, map_location="cpu", weights_only=True)) for p in (a, b))
    if wa.keys() != wb.keys():
        raise ValueError(f"{a} and {b} hold different tensors")
    out = {}
    for k, va in wa.items():
        if va.is_floating_point():
            out[k] = ((wb[k] - va).norm() / (va.norm() + 1e-12)).item()
        else:
            out[k] = 0.0 if torch.equal(va, wb[k]) else 1.0
    return out


def _weights(ckpt: dict) -> dict[str, torch.Tensor]:
    return {**{f"model.{k}": v for k, v in ckpt["state_dict"].items()},
            **{f"momentum.{k}": v["momentum_buffer"] for k, v in ckpt["optimizer"]["state"].items()}}  # fmt: skip


def summarise_differences(differences: dict[str, float]) -> dict:
    """Bit-identical or not, and the largest relative difference with its tensor."""
    worst = max(differences, key=differences.get)
    return dict(identical=not any(differences.values()), max_relative=differences[worst], worst=worst)


def without_timing(epochs: list[dict]) -> list[dict]:
    """Per-epoch results less what the clock and the allocator decide (seconds, img/s, peak memory)."""
    return [{k: v for k, v in row.items() if k not in ("seconds", "img_per_s", "peak_mem_mib")} for row in epochs]


def rank_pid(launcher_pid: int, rank: int) -> int:
    """The process of ``rank`` among the workers that ``torchrun`` (process ``launcher_pid``) started (Linux:
    its children in /proc whose environment holds ``RANK=rank``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0") if parent == launcher_pid else []
        except (OSError, ValueError):
            continue
        if f"RANK={rank}".encode() in environ:
            return int(entry.name)
    raise LookupError(f"no worker of rank {rank} under process {launcher_pid}")


# ---------------------------------------------------------------------------------------------------------------
# runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Study:
    """The runs of one call: their commands, output folders, logs and times."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        cuda = args.device == "cuda"
        self.gpus = args.gpus or (torch.cuda.device_count() if cuda else 2)
        if cuda and self.gpus < 2:
            raise SystemExit(f"multi-GPU runs need 2 or more GPUs; this machine has {torch.cuda.device_count()}")
        self.started = time.perf_counter()
        self.longest = 0.0
        self.runs: dict[str, dict] = {}
        self.skipped: list[str] = []
        self.log = Path(args.output) / f"{record.path(args, args.device).stem}-log.txt"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        # the training runs' speed is not measured: one tile shape a kernel, not minutes of tuning at new shapes
        self.env = {"ADAPTCONV_AUTOTUNE": "0", **distributed_scaling.launch_env(args.device)}

    def argv(self, launcher: str, model: str, name: str, seed: int, *extra: str) -> list[str]:
        """The command line of one run: ``one`` (one GPU or one process), ``torchrun`` or ``spawn``."""
        a = self.args
        more = [f for f in a.train_args if f != "--"]
        train = ["train", "--dataset", a.dataset, "--recipe", a.recipe, "-a", model, "--epochs", str(a.epochs),
                 "--seed", str(seed), "--output", str(a.run_dir / name), *more, *extra]  # fmt: skip
        if a.device == "cpu":
            train.append("--cpu")
        if launcher == "torchrun":
            return [*distributed_scaling.torchrun(self.gpus), "-m", "adaptconv.cli.main", *train]
        if launcher == "spawn":
            train += ["--multiprocessing-distributed", "--world-size", "1", "--rank", "0", "--dist-url",
                      f"tcp://127.0.0.1:{free_port()}"]  # fmt: skip
            if a.device == "cpu":
                train += ["--nproc-per-node", str(self.gpus)]
        return [*CLI, *train]

    def fits(self, runs: int) -> bool:
        """Whether ``runs`` more runs, each as long as the longest so far, end before the deadline."""
        return time.perf_counter() - self.started + runs * self.longest <= self.args.deadline

    def start(self, name: str, argv: list[str], gpu: int | None = None) -> tuple[subprocess.Popen, float]:
        (self.args.run_dir / name).mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        if gpu is not None and self.args.device == "cuda":
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        self.runs[name] = dict(command=shlex.join(["python", *argv[1:]]))
        # a session of its own: a run past the deadline is ended with all its processes
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip
        return proc, time.perf_counter()

    def wait(self, proc: subprocess.Popen) -> str:
        """The output of ``proc`` to its end, or to the deadline (then it is killed, with its workers)."""
        left = self.args.deadline - (time.perf_counter() - self.started)
        try:
            return proc.communicate(timeout=max(left, 30))[0]
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.communicate()[0] + "\n(killed at the deadline)"

    def finish(self, name: str, proc: subprocess.Popen, began: float, output: str) -> bool:
        """Record how run ``name`` ended; whether it succeeded."""
        wall = time.perf_counter() - began
        self.longest = max(self.longest, wall)
        with self.log.open("a") as f:
            f.write(f"==== {name}: {self.runs[name]['command']}\n{output}\n")
        self.runs[name].update(returncode=proc.returncode, wall_seconds=round(wall, 1))
        summary = self.args.run_dir / name / "summary.csv"
        if summary.exists():
            self.runs[name]["epochs"] = read_summary(summary)
        return proc.returncode == 0

    def run(self, *jobs: tuple[str, list[str]]) -> None:
        """Runs side by side, each on its own GPU (``jobs``: (name, argv))."""
        started = [(name, *self.start(name, argv, gpu)) for gpu, (name, argv) in enumerate(jobs)]
        for name, proc, began in started:
            self.finish(name, proc, began, self.wait(proc))

    def killed_and_resumed(self, name: str, argv: list[str]) -> dict:
        """Run ``argv`` (a torchrun), SIGKILL its rank 1 at the first log line past the middle of the last epoch,
        then the same command with ``--resume``."""
        proc, began = self.start(name, argv)
        lines, killed_at = [], None
        for line in proc.stdout:
            lines.append(line)
            m = STEP_LINE.search(line)
            if m and killed_at is None and int(m[1]) == int(m[2]) and 2 * int(m[3]) >= int(m[4]):
                os.kill(rank_pid(proc.pid, 1), signal.SIGKILL)
                killed_at = dict(epoch=int(m[1]), step=int(m[3]))
        self.finish(name, proc, began, "".join(lines) + self.wait(proc))
        checkpoint = self.args.run_dir / name / "checkpoint.pth"
        resumed_from = torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"]
        resume = [*argv, "--resume", str(checkpoint)]
        proc, began = self.start(name + "-resumed", resume)
        self.finish(name + "-resumed", proc, began, self.wait(proc))
        return dict(
            killed_at=killed_at, killed_returncode=self.runs[name]["returncode"], resumed_from_step=resumed_from
        )


def _epochs(study: Study, name: str) -> list[dict]:
    return study.runs.get(name, {}).get("epochs", [])


def resume_check(study: Study, model: str, seed: int, flags: tuple[str, ...]) -> dict:
    """``model``'s torchrun run killed at rank 1 and resumed, against the uninterrupted torchrun run; where they
    differ, the same uninterrupted run again (is the N-GPU path deterministic at all?) if time allows."""
    runs = study.args.run_dir
    name = f"{model}-torchrun-killed"
    out = study.killed_and_resumed(name, study.argv("torchrun", model, name, seed, *flags))
    done = runs / f"{model}-torchrun" / "checkpoint.pth"
    for other in ("killed", "repeat"):
        if other == "repeat" and (out.get("killed_vs_uninterrupted", {}).get("identical") or not study.fits(1)):
            break
        if other == "repeat":
            study.run((f"{model}-torchrun-repeat", study.argv("torchrun", model, f"{model}-torchrun-repeat", seed,
                                                               *flags)))  # fmt: skip
        ckpt = runs / f"{model}-torchrun-{other}" / "checkpoint.pth"
        if done.exists() and ckpt.exists():
            out[f"{other}_vs_uninterrupted"] = summarise_differences(checkpoint_differences(done, ckpt))
            out[f"{other}_epochs_equal"] = without_timing(read_summary(ckpt.parent / "summary.csv")) == (
                without_timing(read_summary(done.parent / "summary.csv")))  # fmt: skip
    return out


def equivalence(study: Study, models: list[str]) -> list[dict]:
    """:func:`compare` of every multi-GPU run against its model's one-GPU reference and seed noise."""
    rows = []
    for model in models:
        reference, noise = _epochs(study, f"{model}-one"), _epochs(study, f"{model}-one-seed+1")
        for launcher in ("torchrun", "spawn"):
            candidate = _epochs(study, f"{model}-{launcher}")
            rows += [dict(model=model, run=launcher, **r) for r in compare(reference, candidate, noise)]
    return rows


def main(argv: list[str] | None = None) -> Path:
    args = parser().parse_args(argv)
    study = Study(args)
    seed, every = args.seed, ("--checkpoint-every-steps", str(args.checkpoint_every_steps))
    facts: dict = dict(gpus=study.gpus, tolerance=dict(factor=FACTOR, floors=FLOORS))

    def write() -> Path:
        rows = equivalence(study, args.models)
        # the training command's own speed, last epoch (the first one compiles and fills caches)
        speed = {name: run["epochs"][-1]["img_per_s"] for name, run in study.runs.items() if run.get("epochs")}
        facts.update(equivalent=bool(rows) and all(r["ok"] for r in rows), train_img_per_s=speed, runs=study.runs,
                     skipped=study.skipped)  # fmt: skip
        return record.write(args, args.device, rows, **facts)

    for part in args.parts:
        if part == "reference":
            for model in args.models:
                if not study.fits(1):
                    study.skipped.append(f"reference {model}")
                    continue
                jobs = [(f"{model}-one", study.argv("one", model, f"{model}-one", seed)),
                        (f"{model}-one-seed+1", study.argv("one", model, f"{model}-one-seed+1", seed + 1))]  # fmt: skip
                if args.device == "cuda":
                    study.run(*jobs)  # side by side, on GPUs 0 and 1
                else:
                    for job in jobs:
                        study.run(job)
        elif part in ("torchrun", "spawn"):
            extra = ("--sync-bn", *every) if part == "torchrun" else ()
            for model in args.models:
                name = f"{model}-{part}"
                if not study.fits(1):
                    study.skipped.append(name)
                    continue
                study.run((name, study.argv(part, model, name, seed, *extra)))
        elif part == "resume":
            if not study.fits(2):
                study.skipped.append("resume")
                continue
            facts["resume"] = resume_check(study, args.models[0], seed, ("--sync-bn", *every))
        elif part == "scaling":
            if not study.fits(2):
                study.skipped.append("scaling")
                continue
            left = args.deadline - (time.perf_counter() - study.started)
            counts = ["--gpus", "1", str(study.gpus)] if args.gpus else []  # default: 1, 2, 4, ... all GPUs
            scaling = [*shlex.split(args.scaling_flags), "--device", args.device, *counts,
                       "--output", str(args.output), "--timeout", f"{left / 2:.0f}",
                       *(["--name", args.name] if args.name else [])]  # fmt: skip
            began = time.perf_counter()
            facts["scaling"] = dict(record=distributed_scaling.main(scaling).name,
                                    wall_seconds=round(time.perf_counter() - began, 1))  # fmt: skip
        path = write()
        print(f"{part}: done ({time.perf_counter() - study.started:.0f} s) -> {path}", flush=True)
    return write()


if __name__ == "__main__":
    main()
