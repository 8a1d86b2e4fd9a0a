"""``adaptconv train`` / ``validate`` / ``plot`` end to end, in subprocesses, on a tiny generated data set."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from clirun import ENV, MODULE, STEPS_PER_EPOCH, weights
from clirun import run as run_cli
from clirun import train_args as args

from adaptconv.engine.loggers import read_summary

CLI = MODULE


def run(argv: list[str], check: bool = True, **kw):
    return run_cli(argv, check, cli=CLI, **kw)


def test_run_writes_checkpoints_and_summary(finished):
    rows = read_summary(finished / "summary.csv")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"lr", "train_loss", "val_loss", "top1", "top5", "img_per_s", "peak_mem_mib", "seconds"} <= set(rows[0])
    ckpt = torch.load(finished / "checkpoint.pth", weights_only=True)
    assert (ckpt["epoch"], ckpt["step"], ckpt["global_step"]) == (2, 0, 2 * STEPS_PER_EPOCH)
    assert (finished / "model_best.pth").is_file()
    assert not [p for p in finished.iterdir() if p.name.endswith(".tmp")]


def test_killed_run_resumes_bit_identically(tiny, finished, tmp_path):
    """SIGKILL at a random step, resume from the last checkpoint: the same weights as the uninterrupted run."""
    out = tmp_path / "b"
    kill_at = random.Random().randint(2, 2 * STEPS_PER_EPOCH - 2)
    # other data-loading workers than the uninterrupted run: augmentation must not depend on them
    proc = subprocess.Popen(CLI + args(tiny, out, "--checkpoint-every-steps", "1", "-j", "2"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    seen = 0
    for line in proc.stdout:
        if " step " in line and ": loss " in line:
            seen += 1
            if seen == kill_at:
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"the run ended before step {kill_at}"
    # each step's checkpoint is written before its log line, except an epoch's last step, whose checkpoint
    # follows the validation: killed there, the run resumes from the step before
    assert torch.load(out / "checkpoint.pth", weights_only=True)["global_step"] >= kill_at - 1
    run(args(tiny, out, "--checkpoint-every-steps", "1", "--resume", str(out / "checkpoint.pth")))
    a, b = weights(finished / "checkpoint.pth"), weights(out / "checkpoint.pth")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"killed at step {kill_at}; differs: {different[:5]}"
    assert read_summary(out / "summary.csv") == [
        {**r, "seconds": s["seconds"], "img_per_s": s["img_per_s"], "peak_mem_mib": s["peak_mem_mib"]}
        for r, s in zip(read_summary(finished / "summary.csv"), read_summary(out / "summary.csv"), strict=True)
    ]


def _terminate_at_step(argv: list[str], out: Path, step: int, group: bool = False) -> None:
    """Run ``adaptconv ARGV`` and send SIGTERM when it logs ``step`` (with ``group``, to its whole process group,
    as a scheduler does): it must save a checkpoint at that step or later in the first epoch and exit 143."""
    marker = f"step {step}/"
    proc = subprocess.Popen(CLI + argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=group)  # fmt: skip
    for line in proc.stdout:
        if marker in line:
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stdout.read()
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, rest
    assert "continue with --resume" in rest
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["step"] >= step


def test_sigterm_saves_a_checkpoint_and_exits(tiny, tmp_path):
    out = tmp_path / "t"
    _terminate_at_step(args(tiny, out), out, 3)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path):
    out = tmp_path / "n"
    result = run(args(tiny, out, "--lr", "1e30", "--checkpoint-every-steps", "1"), check=False)
    assert result.returncode == 1
    assert "NaN or infinite" in result.stderr and "Traceback" not in result.stderr
    ckpt = torch.load(out / "checkpoint.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_corrupt_resume_is_refused_and_kept(tiny, tmp_path):
    out = tmp_path / "c"
    out.mkdir()
    (out / "checkpoint.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    result = run(args(tiny, out, "--resume", str(out / "checkpoint.pth")), check=False)
    assert result.returncode == 1 and "cannot read" in result.stderr and "Traceback" not in result.stderr
    assert (out / "checkpoint.pth").read_bytes() == b"PK\x03\x04 not really a checkpoint"


def test_a_new_run_never_overwrites_an_old_one(tiny, finished):
    before = (finished / "checkpoint.pth").read_bytes()
    result = run(args(tiny, finished), check=False)
    assert result.returncode == 1 and "--resume" in result.stderr
    assert (finished / "checkpoint.pth").read_bytes() == before


def test_bad_images_are_named_or_skipped(tmp_path):
    from data.test_datasets import make_folder

    root = make_folder(tmp_path / "d", per_class=4, size=(20, 20))
    bad = root / "train" / "b" / "2.jpg"
    bad.write_bytes(b"this is text, not a JPEG")
    base = ["train", str(root), "-a", "rednet26", "--width", "0.25", "-b", "4", "--epochs", "1", "--img-size", "16",
            "-j", "0", "--output"]  # fmt: skip
    result = run([*base, str(tmp_path / "o1")], check=False)
    assert result.returncode == 1 and str(bad) in result.stderr and "Traceback" not in result.stderr
    result = run([*base, str(tmp_path / "o2"), "--skip-bad-images"])
    assert "skipped images: 1" in result.stdout


def test_skipped_images_are_counted_per_split_and_named(tmp_path):
    """One bad file in train (a PNG with one damaged byte, which crashed the decoder) and one in val: both skipped,
    both counted, both named."""
    from data.test_datasets import make_folder

    root = make_folder(tmp_path / "d", per_class=4, size=(20, 20))
    png = root / "train" / "a" / "1.png"
    data = bytearray(png.read_bytes())
    data[len(data) // 2] ^= 0x55
    png.write_bytes(bytes(data))
    (root / "val" / "b" / "2.jpg").write_bytes(b"this is text, not a JPEG")
    result = run(["train", str(root), "-a", "rednet26", "--width", "0.25", "-b", "4", "--epochs", "1", "--img-size",
                  "16", "-j", "0", "--skip-bad-images", "--output", str(tmp_path / "o")])  # fmt: skip
    summary = result.stdout[result.stdout.index("done:") :]
    assert f"skipped images: 2 (train 1: {png}; val 1: {root / 'val' / 'b' / '2.jpg'})" in summary, summary
    assert f"skipped train image {png}" in result.stderr


def test_sigterm_to_the_process_group_with_loader_workers(tmp_path):
    """What a scheduler does (Slurm, kill -TERM -PGID): the loader workers get the signal too; the run must still
    save a checkpoint and exit with 143."""
    from data.test_datasets import make_folder

    root = make_folder(tmp_path / "d", per_class=8, size=(20, 20))
    out = tmp_path / "o"
    argv = ["train", str(root), "-a", "rednet26", "--width", "0.25", "-b", "4", "--epochs", "2", "--img-size", "16",
            "-j", "2", "-p", "1", "--output", str(out)]  # fmt: skip
    _terminate_at_step(argv, out, 2, group=True)


def test_weights_that_are_not_finite_are_never_written(tiny, tmp_path):
    """A huge learning rate and weight decay overflow the weights at the first step while its loss is finite."""
    out = tmp_path / "w"
    result = run(args(tiny, out, "--lr", "1e38", "--wd", "1e38", "--checkpoint-every-steps", "1"), check=False)
    assert result.returncode == 1 and "NaN or infinite" in result.stderr and "Traceback" not in result.stderr
    for path in out.glob("*.pth"):
        ckpt = torch.load(path, weights_only=True)
        assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point()), path


def test_missing_data_folder(tmp_path):
    result = run(["train", str(tmp_path / "nowhere"), "--output", str(tmp_path / "o")], check=False)
    assert result.returncode == 1 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_validate_and_evaluate_a_checkpoint(tiny, finished):
    top1 = read_summary(finished / "summary.csv")[-1]["top1"]
    out = run(["validate", "--dataset", f"npz:{tiny}", "--checkpoint", str(finished / "checkpoint.pth"), "-j", "0"])
    assert f"top-1 {top1:.2f}%" in out.stdout and "img/s" in out.stdout
    out = run(args(tiny, finished, "-e", "--resume", str(finished / "checkpoint.pth")))
    assert f"top-1 {top1:.2f}%" in out.stdout


def test_plot(finished, tmp_path):
    from PIL import Image

    run(["plot", str(finished), "--output", str(tmp_path / "c.png")])
    with Image.open(tmp_path / "c.png") as im:
        assert im.size[0] > 800


def test_tensorboard_and_offline_wandb(tiny, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    out = tmp_path / "l"
    env = {k: v for k, v in ENV.items() if not k.startswith("WANDB_") or k == "WANDB_SILENT"}
    result = subprocess.run(CLI + args(tiny, out, "--epochs", "1", "--log", "tensorboard", "wandb"),
                            capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))
