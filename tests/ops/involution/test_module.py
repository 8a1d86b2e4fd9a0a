"""Involution2d: official semantics on even sizes, defined behaviour on odd sizes, clear errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import DEVICES

from adaptconv.ops import Involution2d
from adaptconv.ops import involution_aggregate_unfold as unfold_reference


def official_involution(m: Involution2d, x: torch.Tensor) -> torch.Tensor:
    """The official layer: floor average pool by the stride, kernel generation, Eq. 4 by unfold."""
    pooled = F.avg_pool2d(x, m.stride, m.stride) if m.stride > 1 else x
    kernels = m.span(m.reduce(pooled))
    return unfold_reference(x, kernels, m.kernel_size, m.stride, m.padding, m.dilation)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("channels", "k", "stride", "size"), [(32, 7, 1, (9, 13)), (64, 7, 2, (14, 10)), (32, 3, 1, (8, 8))]
)
def test_official_semantics_where_official_runs(device, channels, k, stride, size):
    m = Involution2d(channels, k, stride).to(device).eval()
    x = torch.randn(2, channels, *size, device=device)
    torch.testing.assert_close(m(x), official_involution(m, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(15, 17), (1, 1), (3, 2), (7, 8)])
def test_odd_sizes_with_stride_two(size):
    m = Involution2d(32, 7, 2).eval()
    x = torch.randn(2, 32, *size)
    out = m(x)
    assert out.shape == (2, 32, -(-size[0] // 2), -(-size[1] // 2))
    # The kernels come from a ceil-mode pool: its last window averages the pixels that exist.
    pooled = F.avg_pool2d(x, 2, 2, ceil_mode=True)
    if size[0] % 2:
        torch.testing.assert_close(pooled[:, :, -1, 0], x[:, :, -1, :2].mean(-1))
    ref = unfold_reference(x, m.span(m.reduce(pooled)), 7, 2, 3, 1)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_channels_last_and_backward():
    m = Involution2d(32, 7, 2, dilation=2)
    x = torch.randn(2, 32, 11, 12, requires_grad=True)
    out = m(x)
    out_cl = m.to(memory_format=torch.channels_last)(x.detach().to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out, rtol=1e-5, atol=1e-5)
    out.square().sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (dict(channels=40), "multiple of group_channels"),
        (dict(channels=8), "multiple of group_channels"),
        (dict(channels=32, kernel_size=6), "odd"),
        (dict(channels=32, stride=0), "stride"),
        (dict(channels=16, reduction=32), "reduction"),
    ],
)
def test_bad_construction(args, match):
    with pytest.raises(ValueError, match=match):
        Involution2d(**args)


def test_wrong_input_channels():
    with pytest.raises(ValueError, match="has 16 channels but this layer was built for 32"):
        Involution2d(32)(torch.randn(1, 16, 8, 8))


def test_inductor_gradient_on_odd_sizes_with_stride_two():
    # The stride pool's last window overhangs odd sizes (ceil_mode); inductor's avg-pool backward divides such a
    # window by the full window size unless count_include_pad=False (PyTorch issue #198119).
    torch._dynamo.reset()
    layer = Involution2d(16, 3, 2)
    x = torch.randn(2, 16, 9, 11, requires_grad=True)
    grads = []
    for fn in (layer, torch.compile(layer, backend="inductor", fullgraph=True)):
        (gx,) = torch.autograd.grad(fn(x).square().sum(), x)
        grads.append(gx)
    torch._dynamo.reset()
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-5)


@pytest.mark.usefixtures("no_tf32")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_compiled_layer_takes_a_second_input_size(device, layout):
    # A second input size makes torch.compile recompile with symbolic sizes (dynamic shapes). That once
    # specialised them again inside the op (a layout test that compared strides with sizes) and inductor failed on
    # the constants left behind ("Cannot convert expression to float"), in train mode.
    torch._dynamo.reset()  # the first size compiles with static sizes whatever other tests compiled before
    m = Involution2d(64, 7, 2).to(device)
    compiled = torch.compile(m, fullgraph=True)
    params = list(m.parameters())
    for size in [(29, 31), (28, 30)]:
        x = torch.randn(2, 64, *size, device=device).to(memory_format=layout).requires_grad_(True)
        outputs = []
        for f in (compiled, m):
            y = f(x)
            outputs.append([y, *torch.autograd.grad(y, [x, *params], torch.ones_like(y))])
        for got, want in zip(*outputs, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    torch._dynamo.reset()


def test_empty_spatial_input_is_explained():
    with pytest.raises(ValueError, match="empty spatial size"):
        Involution2d(16)(torch.randn(1, 16, 5, 0))
