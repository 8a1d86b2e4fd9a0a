"""benchmarks/kernel_resources.py: the kernels compile for an H100 on any machine and its counts are read back."""

import sys
from pathlib import Path

import pytest
import torch

from adaptconv.ops import involution_triton

pytestmark = pytest.mark.skipif(not involution_triton.AVAILABLE, reason="triton is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_compiled_kernels_are_read(layout):
    kernel_resources = pytest.importorskip("kernel_resources")
    if not (kernel_resources.BIN / "ptxas").exists():
        pytest.skip("this triton has no ptxas")
    calls = kernel_resources.recorded_calls("layer4", 2, torch.bfloat16, layout)
    family = "pixel-block" if layout == "channels_last" else "spatial-tile"
    assert set(calls) == {f"{family} forward_kernel", f"{family} backward_kernel"}
    autotuner, args, kwargs, configs = calls[f"{family} forward_kernel"]
    stats = kernel_resources.summarise(*kernel_resources.compile_config(autotuner, args, kwargs, configs[0]))
    assert 0 < stats["registers"] <= 255 and stats["spill_bytes"] >= 0
    # the row loop of the forward: its multiply-adds and loads are there, and it is part of the whole kernel
    inner = stats["loops"][0]
    assert inner["float"] > 0 and inner["loads"] > 0 and inner["instructions"] < stats["instructions"]


def test_band_kernels_are_read():
    # The band family (asked for by name): three kernels, with compile-time steps derived by triton.heuristics.
    kernel_resources = pytest.importorskip("kernel_resources")
    if not (kernel_resources.BIN / "ptxas").exists():
        pytest.skip("this triton has no ptxas")
    calls = kernel_resources.recorded_calls("layer4", 2, torch.bfloat16, "channels_last", "band")
    assert set(calls) == {f"band {k}_kernel" for k in ("forward", "weight_grad", "input_grad")}
    autotuner, args, kwargs, configs = calls["band forward_kernel"]
    stats = kernel_resources.summarise(*kernel_resources.compile_config(autotuner, args, kwargs, configs[0]))
    assert stats["mma"] > 0 and stats["float"] == 0  # the multiply-adds are on tensor cores
