"""Resuming: the checkpoint holds the run's settings and files, the new command line may change only what is safe,
and a run stopped at any point (a kill while writing the best weights, a signal at an epoch's last step) continues
to the results of a run that was never stopped."""

from __future__ import annotations

import shutil
import signal

import pytest
import torch
from clirun import STEPS_PER_EPOCH, run, train_args, weights, with_fault

from adaptconv.engine.config import ConfigError, TrainConfig
from adaptconv.engine.loggers import read_summary
from adaptconv.engine.resume import resume_config

#: kill the process with SIGKILL half-way through writing model_best.pth (its temporary file is left behind)
KILL_WHILE_WRITING_BEST = """
import os, signal, torch
real_save = torch.save
def save(obj, f, *args, **kwargs):
    if ".model_best.pth." in os.readlink(f"/proc/self/fd/{f.fileno()}"):  # the file being written
        f.write(b"PK half a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)
torch.save = save
"""


def _same_history(a, b) -> bool:
    """Two summary.csv files agree on everything but timings and memory."""
    keep = lambda rows: [
        {k: v for k, v in r.items() if k not in ("seconds", "img_per_s", "peak_mem_mib")} for r in rows
    ]  # noqa: E731
    return keep(read_summary(a)) == keep(read_summary(b))


def test_a_kill_while_writing_the_best_weights_loses_nothing(tiny, tmp_path):
    out = tmp_path / "k"
    argv = train_args(tiny, out, "--epochs", "1", "--checkpoint-every-steps", "1")
    killed = run(argv, check=False, cli=with_fault(KILL_WHILE_WRITING_BEST))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert [p.name for p in out.glob(".model_best.pth.*.tmp")], "the kill left a half-written temporary file"
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["best_epoch"] <= 0 or (out / "model_best.pth").is_file(), "the checkpoint names a missing best file"
    resumed = run(train_args(tiny, out, "--epochs", "1", "--checkpoint-every-steps", "1", "--resume",
                             str(out / "checkpoint.pth")))  # fmt: skip
    assert "removed 1 temporary file(s)" in resumed.stdout and not list(out.glob(".*.tmp"))
    best = torch.load(out / "model_best.pth", weights_only=True)
    assert best["best_epoch"] == 1 and f"best: {out / 'model_best.pth'}" in resumed.stdout
    run(["validate", "--checkpoint", str(out / "model_best.pth"), "-j", "0"])


def test_resume_rebuilds_a_deleted_best_file_from_its_epoch(tiny, finished, tmp_path):
    run_dir = shutil.copytree(finished, tmp_path / "copy")
    (run_dir / "model_best.pth").unlink()
    ckpt = torch.load(run_dir / "checkpoint.pth", weights_only=True)
    assert ckpt["best_epoch"] == ckpt["epoch"] == 2, "the tiny run's last epoch is its best"
    result = run(["train", "--resume", str(run_dir / "checkpoint.pth")])
    assert f"restored {run_dir / 'model_best.pth'} (epoch 2)" in result.stdout
    best, last = weights(run_dir / "model_best.pth"), weights(run_dir / "checkpoint.pth")
    assert best.keys() == last.keys() and all(torch.equal(best[k], last[k]) for k in best)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["-b", "16"], "-b/--batch-size 16 (the run has 8)"),
        (["--seed", "5"], "--seed 5 (the run has 0)"),
        (["--width", "0.5"], "--width 0.5 (the run has 0.25)"),
        (["--epochs", "1"], "--epochs 1 (the checkpoint has finished 2 epochs already)"),
    ],
)
def test_resume_refuses_flags_that_break_exactness(tiny, finished, tmp_path, flags, named):
    """The run's own command line, one flag changed (the last of a flag given twice wins, as in argparse)."""
    run_dir = shutil.copytree(finished, tmp_path / "copy")
    before = (run_dir / "checkpoint.pth").read_bytes()
    argv = train_args(tiny, run_dir, "--checkpoint-every-steps", "1", "--resume", str(run_dir / "checkpoint.pth"))
    result = run([*argv, *flags], check=False)
    assert result.returncode == 1 and named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and (run_dir / "checkpoint.pth").read_bytes() == before


def test_resume_restores_every_setting_and_accepts_safe_changes(tiny, finished, tmp_path):
    """Only --resume and more epochs: the model, data and settings come from the checkpoint (no DIR, no -a)."""
    run_dir = shutil.copytree(finished, tmp_path / "copy")
    result = run(["train", "--resume", str(run_dir / "checkpoint.pth"), "--epochs", "3", "-p", "2", "-j", "1"])
    assert "resuming with -p/--print-freq 2 (the run had 1)" in result.stdout
    assert "resuming with -j/--workers 1 (the run had 0)" in result.stdout
    assert "resuming with --epochs 3 (the run had 2)" in result.stdout
    assert "training rednet26 on " in result.stdout and "for 3 epochs" in result.stdout
    assert "step 2/6" in result.stdout and "step 1/6" not in result.stdout, "printed every 2 steps"
    assert [r["epoch"] for r in read_summary(run_dir / "summary.csv")] == [1, 2, 3]


def test_resume_config_keeps_the_runs_settings():
    saved = TrainConfig(arch="rednet26", width=0.25, batch_size=8, seed=0, lr=0.05, epochs=2, print_freq=1,
                        dataset="npz:/data/tiny.npz", log=[]).to_dict()  # fmt: skip
    cfg, notes = resume_config(TrainConfig(resume="r/checkpoint.pth", batch_size=8), saved, done_epochs=1)
    assert (cfg.arch, cfg.width, cfg.seed, cfg.lr, cfg.dataset, cfg.epochs) == (*(saved[k] for k in (
        "arch", "width", "seed", "lr", "dataset")), 2) and not notes  # fmt: skip
    with pytest.raises(ConfigError, match=r"--lr 0\.1 \(the run has 0\.05\); --pretrained"):
        resume_config(TrainConfig(resume="r", lr=0.1, pretrained="w.pth"), saved, done_epochs=1)


def test_a_signal_at_an_epochs_last_step_keeps_its_train_loss(tiny, finished, tmp_path):
    """A SIGTERM acted on at the last step of epoch 1 saves 'step 6 of 6'; the resumed run must record epoch 1's
    training loss and not add it into epoch 2's."""
    signal_at_last_step = f"""
import os, signal
import adaptconv.engine.trainer as trainer
real_check = trainer.Trainer._check
def check(self, bad_at, stop):
    if self.epoch == 0 and self.step == {STEPS_PER_EPOCH}:
        os.kill(os.getpid(), signal.SIGTERM)
    return real_check(self, bad_at, stop)
trainer.Trainer._check = check
"""
    out = tmp_path / "s"
    stopped = run(train_args(tiny, out, "--checkpoint-every-steps", "1"), check=False,
                  cli=with_fault(signal_at_last_step))  # fmt: skip
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stdout + stopped.stderr
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (0, STEPS_PER_EPOCH)
    run(train_args(tiny, out, "--checkpoint-every-steps", "1", "--resume", str(out / "checkpoint.pth")))
    assert _same_history(out / "summary.csv", finished / "summary.csv")
    a, b = weights(finished / "checkpoint.pth"), weights(out / "checkpoint.pth")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_signal_during_the_final_evaluation_saves_and_exits_143(tiny, finished, tmp_path):
    signal_in_last_evaluation = """
import os, signal
import adaptconv.engine.trainer as trainer
real_evaluate, calls = trainer.evaluate, []
def evaluate(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGTERM)
    return real_evaluate(*args, **kwargs)
trainer.evaluate = evaluate
"""
    out = tmp_path / "e"
    stopped = run(train_args(tiny, out, "--checkpoint-every-steps", "1"), check=False,
                  cli=with_fault(signal_in_last_evaluation))  # fmt: skip
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stdout + stopped.stderr
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"]) == (1, STEPS_PER_EPOCH), "epoch 2 trained, its evaluation not recorded"
    run(train_args(tiny, out, "--checkpoint-every-steps", "1", "--resume", str(out / "checkpoint.pth")))
    assert _same_history(out / "summary.csv", finished / "summary.csv")


def test_a_nan_validation_loss_is_reported_and_never_the_best(tiny, tmp_path):
    nan_evaluation = """
import adaptconv.engine.trainer as trainer
real_evaluate = trainer.evaluate
def evaluate(*args, **kwargs):
    out = real_evaluate(*args, **kwargs)
    return out and {**out, "loss": float("nan"), "top1": 0.0, "top5": 0.0}
trainer.evaluate = evaluate
"""
    out = tmp_path / "n"
    result = run(train_args(tiny, out, "--epochs", "1"), cli=with_fault(nan_evaluation))
    assert "warning: epoch 1: the validation loss is nan" in result.stderr
    assert not (out / "model_best.pth").exists() and "best: " not in result.stdout
    assert torch.load(out / "checkpoint.pth", weights_only=True)["best_epoch"] == -1
    assert "done: rednet26 (width 0.25), 1 epoch on" in result.stdout and "for 1 epoch on" in result.stdout
