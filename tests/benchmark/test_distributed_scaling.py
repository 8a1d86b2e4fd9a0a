"""benchmarks/distributed_scaling.py on the CPU: 1 and 2 gloo processes, each launched by torchrun, one record."""

from __future__ import annotations

import json

import pytest

from benchmarks import distributed_scaling


def test_efficiency_is_the_speedup_per_gpu():
    rows = [dict(model="m", gpus=1, img_per_s=100.0), dict(model="m", gpus=2, img_per_s=190.0),
            dict(model="n", gpus=2, img_per_s=50.0)]  # fmt: skip
    out = distributed_scaling.with_efficiency(rows)
    assert [(r["speedup"], r["efficiency"]) for r in out] == [(1.0, 1.0), (1.9, 0.95), (None, None)]


def test_multicast_stays_off_unless_set(monkeypatch):
    for name in distributed_scaling.NO_MULTICAST:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NVSHMEM_DISABLE_NVLS", "yes")  # set already: kept
    env = distributed_scaling.launch_env("cpu")
    assert env["NCCL_NVLS_ENABLE"] == "0" and env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1"
    assert env["NVSHMEM_DISABLE_NVLS"] == "yes" and env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("data", ["synthetic", "npz"])
def test_one_and_two_processes_on_the_cpu(data, tiny, tmp_path):
    source = "synthetic" if data == "synthetic" else f"npz:{tiny}"
    argv = ["--device", "cpu", "--models", "rednet26", "--batch-size", "2", "--img-size", "16", "--dtype", "fp32",
            "--layout", "nchw", "--repeats", "2", "--warmup", "1", "--num-classes", "4", "--data", source,
            "--output", str(tmp_path), "--name", data]  # fmt: skip
    path = distributed_scaling.main(argv)
    assert path == tmp_path / f"distributed_scaling-{data}-cpu.json"
    record = json.loads(path.read_text())
    rows = record["rows"]
    assert [(r["model"], r["gpus"]) for r in rows] == [("rednet26", 1), ("rednet26", 2)]
    assert rows[0]["efficiency"] == 1.0 and rows[1]["efficiency"] > 0 and all(r["img_per_s"] > 0 for r in rows)
    assert all((r["input_ms"] is None) == (data == "synthetic") for r in rows)
    assert record["command"].startswith("python -m benchmarks.distributed_scaling --device cpu")
    assert record["multicast_env"]["NCCL_NVLS_ENABLE"] == "0"


def test_a_launch_past_its_timeout_is_ended_and_recorded(tmp_path):
    argv = ["--device", "cpu", "--models", "rednet26", "--gpus", "1", "--timeout", "0.5", "--output", str(tmp_path)]
    record = json.loads(distributed_scaling.main(argv).read_text())
    assert record["rows"] == [] and "timed out" in record["failed"]["1"]
