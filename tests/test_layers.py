"""The shared building blocks: the stride average pool of the involution's kernel generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adaptconv import layers
from adaptconv.layers import StrideAvgPool2d, stride_avg_pool, window_mean


def avg_pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    return F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)


def pooled_with_grads(pool, x: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_()
    y = pool(x)
    y.backward(grad)
    return y, x.grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("stride", "size"), [(2, (14, 10)), (3, (9, 6)), (2, (2, 2))])
def test_window_mean_is_the_average_pool(dtype, stride, size):
    x = torch.randn(3, 24, *size, dtype=dtype).to(memory_format=torch.channels_last)
    grad = torch.randn(3, 24, size[0] // stride, size[1] // stride, dtype=dtype)
    y, gx = pooled_with_grads(lambda t: window_mean(t, stride), x, grad)
    y_ref, gx_ref = pooled_with_grads(lambda t: avg_pool(t, stride), x, grad)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    assert y.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("size", [(15, 17), (16, 8), (1, 1)])
def test_stride_pool_on_cpu_is_avg_pool2d(layout, size, monkeypatch):
    # On a CPU the window mean is the slower one: it must not be taken, even for channels_last and even sides.
    def not_on_cpu(*args):
        raise AssertionError("window_mean ran on a CPU tensor")

    monkeypatch.setattr(layers, "window_mean", not_on_cpu)
    x = torch.randn(2, 8, *size).to(memory_format=layout)
    torch.testing.assert_close(stride_avg_pool(x, 2), avg_pool(x, 2), rtol=0, atol=0)
    official = torch.nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
    assert StrideAvgPool2d(2).extra_repr() == official.extra_repr()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("size", [(56, 56), (15, 17), (14, 9)])
def test_cuda_stride_pool_matches_avg_pool2d(dtype, layout, size):
    x = torch.randn(4, 64, *size, device="cuda", dtype=dtype).to(memory_format=layout)
    grad = torch.randn(4, 64, -(-size[0] // 2), -(-size[1] // 2), device="cuda", dtype=dtype)
    y, gx = pooled_with_grads(StrideAvgPool2d(2), x, grad)
    y_ref, gx_ref = pooled_with_grads(lambda t: avg_pool(t, 2), x, grad)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(gx, gx_ref, **tol)
    assert y.is_contiguous(memory_format=layout)
