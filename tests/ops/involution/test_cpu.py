"""The CPU kernels (windows for tiny maps, the tap loop otherwise): both paths against the plain formulation."""

from __future__ import annotations

import pytest
import torch
from helpers import rel_error
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptconv.ops import involution_aggregate, involution_aggregate_unfold, involution_output_size
from adaptconv.ops.involution import cpu
from adaptconv.ops.involution.reference import involution_aggregate_backward_reference, involution_aggregate_reference

#: the CPU's two paths, each run whatever the map size: (forward, backward)
PATHS = {
    "windows": (cpu.aggregate_windows, cpu.aggregate_windows_backward),
    "taps": (involution_aggregate_reference, involution_aggregate_backward_reference),
}


@pytest.fixture(params=list(PATHS))
def path(request):
    return request.param


def _check(x, weight, k, s, p, d, tol, path=None):
    """The op (``path`` None: as dispatched) or one path's forward and backward against the unfold formulation."""
    xd, wd = x.detach().double().requires_grad_(True), weight.detach().double().requires_grad_(True)
    ref = involution_aggregate_unfold(xd, wd, k, s, p, d)
    grad = torch.randn(ref.shape, dtype=torch.float64)
    rx, rw = torch.autograd.grad(ref, (xd, wd), grad)
    if path is None:
        x, weight = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
        out = involution_aggregate(x, weight, k, s, p, d)
        gx, gw = torch.autograd.grad(out, (x, weight), grad.to(out.dtype))
    else:
        forward, backward = PATHS[path]
        out = forward(x, weight, k, s, p, d)
        gx, gw = backward(grad.to(out.dtype), x, weight, k, s, p, d)
    fmt = torch.channels_last if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last) else (
        torch.contiguous_format)  # fmt: skip
    assert out.dtype == x.dtype and gx.is_contiguous(memory_format=fmt) and gw.shape == weight.shape
    for a, b in ((out, ref), (gx, rx), (gw, rw)):
        assert rel_error(a, b) <= tol


@settings(max_examples=25, deadline=None)
@given(
    groups=st.integers(1, 2), group_channels=st.sampled_from([1, 16]), h=st.integers(1, 11), w=st.integers(1, 11),
    k=st.sampled_from([1, 3, 7]), s=st.integers(1, 2), d=st.integers(1, 2), channels_last=st.booleans(),
)  # fmt: skip
def test_both_paths_and_the_op_match_the_plain_formulation(groups, group_channels, h, w, k, s, d, channels_last):
    p = d * (k - 1) // 2
    ho, wo = involution_output_size(h, w, k, s, p, d)
    x = torch.randn(2, groups * group_channels, h, w, dtype=torch.float64)
    weight = torch.randn(2, groups * k * k, ho, wo, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    for path in [*PATHS, None]:
        _check(x, weight, k, s, p, d, 1e-12, path)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2), (torch.float16, 1e-2)])
def test_precision(path, dtype, tol):
    x = torch.randn(2, 32, 9, 13).to(dtype)[:, :, :, 1:]  # non-contiguous
    weight = torch.randn(2, 2 * 49, 5, 6).to(dtype)
    _check(x, weight, 7, 2, 3, 1, tol, path)


def test_windows_serve_maps_smaller_than_the_kernel_within_the_size_limit():
    x, weight = torch.randn(1, 16, 6, 8), torch.randn(1, 49, 6, 8)
    assert cpu.use_windows(x, weight, 7)  # 48 pixels < 49 taps
    assert not cpu.use_windows(torch.randn(1, 16, 7, 7), torch.randn(1, 49, 7, 7), 7)
    assert not cpu.use_windows(x, weight, 7, max_bytes=16 * 49 * 48 * 4 - 1)
    assert cpu.use_windows(x, weight, 7, max_bytes=16 * 49 * 48 * 4)


def test_the_op_runs_the_cpu_implementation():
    """The op's CPU implementation is ``cpu.aggregate`` (windows on a small map), not only the reference."""
    x, weight, grad = torch.randn(1, 16, 3, 3), torch.randn(1, 49, 3, 3), torch.randn(1, 16, 3, 3)
    op = torch.ops.adaptconv
    windows = cpu.aggregate_windows(x, weight, 7, 1, 3, 1)
    torch.testing.assert_close(op.involution_aggregate(x, weight, 7, 1, 3, 1), windows, rtol=0, atol=0)
    for a, b in zip(op.involution_aggregate_backward(grad, x, weight, 7, 1, 3, 1),
                    cpu.aggregate_windows_backward(grad, x, weight, 7, 1, 3, 1), strict=True):  # fmt: skip
        torch.testing.assert_close(a, b, rtol=0, atol=0)
