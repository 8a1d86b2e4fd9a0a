"""involution_aggregate (a loop over taps) against the unfold formulation of the paper's Eq. 4, forward and backward."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from adaptconv.ops import involution_aggregate, involution_output_size
from adaptconv.ops import involution_aggregate_unfold as unfold_reference


def make_inputs(n, groups, group_channels, h, w, k, s, p, d, dtype=torch.float64, device="cpu"):
    ho, wo = involution_output_size(h, w, k, s, p, d)
    x = torch.randn(n, groups * group_channels, h, w, dtype=dtype, device=device)
    weight = torch.randn(n, groups * k * k, ho, wo, dtype=dtype, device=device)
    return x, weight


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.integers(1, 3),
    group_channels=st.sampled_from([1, 2, 16]),
    h=st.integers(1, 13),
    w=st.integers(1, 13),
    k=st.sampled_from([1, 3, 5, 7]),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    extra_pad=st.integers(-1, 1),
)
def test_matches_unfold_forward_and_backward(n, groups, group_channels, h, w, k, s, d, extra_pad):
    p = max(0, d * (k - 1) // 2 + extra_pad)
    ho, wo = involution_output_size(h, w, k, s, p, d)
    if ho < 1 or wo < 1:
        return
    x, weight = make_inputs(n, groups, group_channels, h, w, k, s, p, d)
    x.requires_grad_(True)
    weight.requires_grad_(True)
    out = involution_aggregate(x, weight, k, s, p, d)
    ref = unfold_reference(x, weight, k, s, p, d)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    gx, gw = torch.autograd.grad(out, (x, weight), grad)
    rx, rw = torch.autograd.grad(ref, (x, weight), grad)
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("dtype", "tol"),
    [(torch.float32, 1e-5), (torch.bfloat16, 1e-2), (torch.float16, 1e-2), (torch.float64, 1e-12)],
)
@pytest.mark.parametrize("shape", [(2, 2, 16, 9, 11, 7, 2, 1), (1, 3, 16, 14, 14, 7, 1, 1), (2, 1, 16, 8, 5, 3, 1, 2)])
def test_precision_against_float64(device, dtype, tol, shape):
    n, g, gc, h, w, k, s, d = shape
    p = d * (k - 1) // 2
    x64, w64 = make_inputs(n, g, gc, h, w, k, s, p, d, device=device)
    x, wt = x64.to(dtype).requires_grad_(True), w64.to(dtype).requires_grad_(True)
    out = involution_aggregate(x, wt, k, s, p, d)
    assert out.dtype == dtype
    # The reference sees the same rounded inputs, so only the aggregation's own error is measured.
    xr, wr = x.detach().double().requires_grad_(True), wt.detach().double().requires_grad_(True)
    ref = unfold_reference(xr, wr, k, s, p, d)
    assert rel_error(out, ref) <= tol
    grad = torch.randn_like(ref)
    gx, gw = torch.autograd.grad(out, (x, wt), grad.to(dtype))
    rx, rw = torch.autograd.grad(ref, (xr, wr), grad.to(dtype).double())
    assert gx.dtype == dtype and gw.dtype == dtype
    assert rel_error(gx, rx) <= tol
    assert rel_error(gw, rw) <= tol


@pytest.mark.parametrize("device", DEVICES)
def test_layouts_give_the_same_result(device):
    x, weight = make_inputs(2, 2, 16, 11, 9, 7, 2, 3, 1, dtype=torch.float32, device=device)
    ref = involution_aggregate(x, weight, 7, 2, 3, 1)
    x_cl = x.to(memory_format=torch.channels_last)
    w_cl = weight.to(memory_format=torch.channels_last)
    out_cl = involution_aggregate(x_cl, w_cl, 7, 2, 3, 1)
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, ref)
    # Non-contiguous views: a spatial transpose and a channel slice.
    x_t = x.transpose(2, 3).contiguous().transpose(2, 3)
    torch.testing.assert_close(involution_aggregate(x_t, weight, 7, 2, 3, 1), ref)
    big = torch.randn(2, 48, 11, 9, device=device)
    big[:, 8:40] = x
    torch.testing.assert_close(involution_aggregate(big[:, 8:40], weight, 7, 2, 3, 1), ref)
    # Gradients in channels_last.
    x_cl.requires_grad_(True)
    w_cl.requires_grad_(True)
    involution_aggregate(x_cl, w_cl, 7, 2, 3, 1).sum().backward()
    assert x_cl.grad.shape == x.shape and w_cl.grad.shape == weight.shape


def test_six_dim_weight_and_default_padding():
    x, weight = make_inputs(1, 2, 16, 10, 10, 5, 1, 2, 1, dtype=torch.float32)
    ref = involution_aggregate(x, weight, 5, 1, 2, 1)
    w6 = weight.view(1, 2, 5, 5, 10, 10)
    torch.testing.assert_close(involution_aggregate(x, w6, 5), ref)


def test_mixed_dtypes_promote():
    x, weight = make_inputs(1, 1, 16, 6, 6, 3, 1, 1, 1, dtype=torch.float32)
    out = involution_aggregate(x, weight.to(torch.bfloat16), 3)
    assert out.dtype == torch.float32
    ref = unfold_reference(x.double(), weight.to(torch.bfloat16).double(), 3, 1, 1, 1)
    assert rel_error(out, ref) < 1e-6


def test_gradcheck_and_opcheck():
    x, weight = make_inputs(1, 2, 2, 5, 6, 3, 2, 1, 1)
    x.requires_grad_(True)
    weight.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: involution_aggregate(a, b, 3, 2, 1, 1), (x, weight))
    for args in [
        (x, weight, 3, 2, 1, 1),
        (*make_inputs(2, 1, 16, 7, 7, 7, 1, 3, 1, torch.float32), 7, 1, 3, 1),
    ]:
        torch.library.opcheck(torch.ops.adaptconv.involution_aggregate.default, args)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fake_implementations_match_real_strides(channels_last, dtype):
    from torch._subclasses.fake_tensor import FakeTensorMode

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x, weight = make_inputs(2, 2, 16, 9, 11, 7, 2, 3, 1, dtype=dtype)
    x, weight = x.contiguous(memory_format=fmt), weight.contiguous(memory_format=fmt)
    grad = torch.randn(2, 32, 5, 6, dtype=dtype).contiguous(memory_format=fmt)
    ops = torch.ops.adaptconv
    real = [
        ops.involution_aggregate(x, weight, 7, 2, 3, 1),
        *ops.involution_aggregate_backward(grad, x, weight, 7, 2, 3, 1),
    ]
    with FakeTensorMode() as mode:
        fx, fw, fg = (mode.from_tensor(t) for t in (x, weight, grad))
        fake = [
            ops.involution_aggregate(fx, fw, 7, 2, 3, 1),
            *ops.involution_aggregate_backward(fg, fx, fw, 7, 2, 3, 1),
        ]
    for r, f in zip(real, fake, strict=True):
        assert (r.shape, r.stride(), r.dtype) == (f.shape, f.stride(), f.dtype)


def test_traced_without_graph_breaks():
    x, weight = make_inputs(2, 2, 16, 9, 9, 7, 2, 3, 1, dtype=torch.float32)
    x.requires_grad_(True)

    def f(a, b):
        return involution_aggregate(a, b, 7, 2, 3, 1).square().sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, weight), f(x, weight))
    (g1,) = torch.autograd.grad(compiled(x, weight), x)
    (g2,) = torch.autograd.grad(f(x, weight), x)
    torch.testing.assert_close(g1, g2)


def test_flop_formula():
    x, weight = make_inputs(2, 3, 16, 9, 11, 7, 2, 3, 1, dtype=torch.float32)
    counter = FlopCounterMode(display=False)
    with counter:
        involution_aggregate(x, weight, 7, 2, 3, 1)
    ho, wo = weight.shape[-2:]
    assert counter.get_total_flops() == 2 * 7 * 7 * x.shape[0] * x.shape[1] * ho * wo


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(kernel_size=4), ValueError, "kernel_size must be odd"),
        (dict(kernel_size=0), ValueError, "kernel_size must be an integer >= 1"),
        (dict(stride=0), ValueError, "stride"),
        (dict(x=torch.randn(32, 8, 8)), ValueError, "4-D"),
        (dict(x=torch.ones(1, 32, 8, 8, dtype=torch.int64)), TypeError, "float16, bfloat16"),
        (dict(weight=torch.randn(1, 2 * 49, 4, 4)), ValueError, "spatial size"),
        (dict(weight=torch.randn(1, 50, 8, 8)), ValueError, "multiple of 49"),
        (dict(weight=torch.randn(1, 3 * 49, 8, 8)), ValueError, "not a multiple of the weight's 3 groups"),
        (dict(weight=torch.randn(2, 2 * 49, 8, 8)), ValueError, "batch size"),
        (dict(weight=torch.randn(1, 2, 6, 7, 8, 8)), ValueError, "6-D weight"),
        (dict(weight=[1.0]), TypeError, "weight must be a torch.Tensor"),
    ],
)
def test_bad_input_is_explained(kwargs, error, match):
    args = dict(x=torch.randn(1, 32, 8, 8), weight=torch.randn(1, 2 * 49, 8, 8), kernel_size=7)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        involution_aggregate(**args)


@pytest.mark.gpu
def test_inductor_compiles_a_whole_layer_on_cuda():
    from adaptconv.ops import Involution2d

    # float64: no TF32 in cuDNN's or inductor's convolutions, so the comparison is exact to rounding.
    layer = Involution2d(64, 7, 2).cuda().double()
    x = torch.randn(4, 64, 29, 31, device="cuda", dtype=torch.float64, requires_grad=True)
    compiled = torch.compile(layer, fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-10, atol=1e-10)
    compiled(x).sum().backward()
    assert x.grad is not None


@pytest.mark.parametrize(
    ("args", "match"),
    [((9, 9, 4), "odd"), ((9, 9, 0), "kernel_size"), ((9, 9, 3, 0), "stride"), ((9, 9, 3, 1, -1), "padding"),
     ((9, 9, 3, 1, None, 0), "dilation")],
)  # fmt: skip
def test_output_size_refuses_bad_windows(args, match):
    with pytest.raises(ValueError, match=match):
        involution_output_size(*args)
