"""involution_fused (kernel generation inside the aggregation) against the span conv + unfold formulation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import rel_error

from adaptconv.ops import Involution2d, involution_aggregate_unfold, involution_fused, involution_output_size


def make_fused_case(n, groups, group_channels, reduced_channels, h, w, k, s, p, d, dtype=torch.float64):
    ho, wo = involution_output_size(h, w, k, s, p, d)
    x = torch.randn(n, groups * group_channels, h, w, dtype=dtype)
    reduced = torch.randn(n, reduced_channels, ho, wo, dtype=dtype)
    span_weight = torch.randn(groups * k * k, reduced_channels, dtype=dtype) / reduced_channels**0.5
    span_bias = torch.randn(groups * k * k, dtype=dtype)
    return x, reduced, span_weight, span_bias


def unfused(x, reduced, span_weight, span_bias, *conf):
    """The independent formulation: the span as a conv, then Eq. 4 through unfold."""
    return involution_aggregate_unfold(x, F.conv2d(reduced, span_weight[:, :, None, None], span_bias), *conf)


@pytest.mark.parametrize("conf", [(3, 1, 1, 1), (7, 2, 3, 1), (5, 1, 4, 2)])
def test_forward_and_gradients_match_unfused(conf):
    inputs = [t.requires_grad_(True) for t in make_fused_case(2, 2, 3, 5, 9, 8, *conf)]
    out, ref = involution_fused(*inputs, *conf), unfused(*inputs, *conf)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_gradcheck_and_opcheck():
    inputs = [t.requires_grad_(True) for t in make_fused_case(1, 2, 2, 3, 5, 6, 3, 2, 1, 1)]
    assert torch.autograd.gradcheck(lambda *a: involution_fused(*a, 3, 2, 1, 1), inputs)
    args = (*(t.detach().float() for t in make_fused_case(2, 2, 16, 8, 7, 7, 7, 1, 3, 1)), 7, 1, 3, 1)
    torch.library.opcheck(torch.ops.adaptconv.involution_fused.default, args)


@pytest.mark.parametrize("stride", [1, 2])
def test_fused_layer_is_the_same_function(stride):
    layer = Involution2d(32, 7, stride).double()
    fused = Involution2d(32, 7, stride, fused=True).double()
    fused.load_state_dict(layer.state_dict())
    x = torch.randn(2, 32, 11, 10, dtype=torch.float64, requires_grad=True)
    y, yf = layer(x), fused(x)
    torch.testing.assert_close(yf, y, rtol=1e-10, atol=1e-10)
    grad = torch.randn_like(y)
    params, fused_params = list(layer.parameters()), list(fused.parameters())
    ref = torch.autograd.grad(y, [x, *params], grad)
    out = torch.autograd.grad(yf, [x, *fused_params], grad)
    for a, b in zip(out, ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert "fused=True" in repr(fused)


def test_traced_without_graph_breaks():
    layer = Involution2d(32, 3, 2, fused=True)
    x = torch.randn(2, 32, 9, 9, requires_grad=True)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), layer(x))
    (g1,) = torch.autograd.grad(compiled(x).square().sum(), x)
    (g2,) = torch.autograd.grad(layer(x).square().sum(), x)
    torch.testing.assert_close(g1, g2)


def test_mixed_dtypes_promote():
    x, reduced, span_weight, span_bias = make_fused_case(1, 1, 16, 4, 6, 6, 3, 1, 1, 1, dtype=torch.float32)
    out = involution_fused(x.bfloat16(), reduced, span_weight, span_bias, 3)
    assert out.dtype == torch.float32
    assert rel_error(out, unfused(x.bfloat16().double(), reduced.double(), span_weight.double(), span_bias.double(),
                                  3, 1, 1, 1)) < 1e-6  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("x_in_autocast_dtype", [True, False])
def test_autocast_gives_the_unfused_layers_dtype(dtype, x_in_autocast_dtype):
    # Under autocast the unfused layer's span conv gives autocast-dtype kernels, and its aggregation promotes them
    # with x: the fused op must give the same dtype, not promote everything to the span parameters' float32.
    layer = Involution2d(32, 7, 2)
    fused = Involution2d(32, 7, 2, fused=True)
    fused.load_state_dict(layer.state_dict())
    x = torch.randn(2, 32, 11, 10).to(dtype if x_in_autocast_dtype else torch.float32)
    with torch.autocast("cpu", dtype=dtype):
        y, yf = layer(x), fused(x)
    assert yf.dtype == y.dtype == (dtype if x_in_autocast_dtype else torch.float32)
    assert rel_error(yf, layer.double()(x.double())) < 2e-2


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(span_weight=torch.randn(2 * 9, 5)), "span_weight must be"),
        (dict(span_weight=torch.randn(20, 4)), "span_weight must be"),
        (dict(span_bias=torch.randn(9)), "span_bias must have shape"),
        (dict(reduced=torch.randn(1, 4, 3, 3)), "reduced must be"),
        (dict(x=torch.randn(1, 3, 6, 6)), "not a multiple of the 2 kernel groups"),
    ],
)
def test_bad_input_is_explained(change, match):
    x, reduced, span_weight, span_bias = make_fused_case(1, 2, 2, 4, 6, 6, 3, 1, 1, 1, dtype=torch.float32)
    args = dict(x=x, reduced=reduced, span_weight=span_weight, span_bias=span_bias, kernel_size=3)
    args.update(change)
    with pytest.raises(ValueError, match=match):
        involution_fused(**args)
