"""benchmarks/free_aggregation.py's stand-in ops, benchmarks/free_calibration.py's levels and
benchmarks/aggregation_floor.py's byte counts (the timing itself needs a GPU)."""

import pytest
import torch

from benchmarks import free_aggregation
from benchmarks.aggregation_floor import floor_bytes, involution_tensors
from benchmarks.free_aggregation import (
    copy_involution,
    free_aggregate,
    free_aggregate_backward,
    free_generation,
    free_involution,
)
from benchmarks.free_calibration import FORWARDS


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_free_aggregation_writes_zeros_of_the_ops_shapes(layout):
    from adaptconv.ops import involution_aggregate

    x = torch.randn(2, 32, 9, 12).to(memory_format=layout)
    w = torch.randn(2, 2 * 49, 5, 6).to(memory_format=layout)
    y = free_aggregate(x, w, 7, 2, 3, 1)
    ref = involution_aggregate(x, w, 7, 2, 3, 1)
    assert y.shape == ref.shape and y.stride() == ref.stride() and not y.any()
    gx, gw = free_aggregate_backward(torch.ones_like(y), x, w, 7, 2, 3, 1)
    assert gx.stride() == x.stride() and gw.stride() == w.stride() and not (gx.any() or gw.any())


def testfree_generation_op_gives_every_input_a_gradient():
    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    reduced = torch.randn(2, 8, 4, 4, requires_grad=True)
    span_w = torch.randn(98, 8, requires_grad=True)
    span_b = torch.randn(98, requires_grad=True)
    args = (x, reduced, span_w, span_b, 7, 2, 3, 1)
    y = free_generation(*args)
    assert y.shape == (2, 32, 4, 4) and not y.any()
    grads = torch.autograd.grad(y.sum(), (x, reduced, span_w, span_b))
    assert [g.shape for g in grads] == [t.shape for t in (x, reduced, span_w, span_b)]
    torch.library.opcheck(free_generation, args, test_utils=("test_schema", "test_faketensor"))


def test_floor_counts_each_involutions_tensors():
    tensors = involution_tensors("rednet26", batch=2, img_size=64)
    stem = tensors[0]  # the stem's involution: C=32 at 32x32 (after the stride-2 conv), K=3, 2 groups
    assert stem == dict(x=2 * 32 * 32 * 32, y=2 * 32 * 32 * 32, kernels=2 * 2 * 9 * 32 * 32, reduced=2 * 8 * 32 * 32)
    assert len(tensors) == 1 + 8  # the stem's, then one a bottleneck
    one = floor_bytes([dict(x=10, y=5, kernels=30, reduced=4)], bytes_per_value=2)
    assert one["stored kernels, forward"] == 2 * (10 + 30 + 5)
    assert one["stored kernels, forward + backward"] == 2 * (10 + 30 + 5 + 5 + 20 + 60)
    assert one["fused, forward + backward"] == 2 * (10 + 4 + 5 + 5 + 20 + 8)
    assert one["stored kernels, the kernels alone, forward + backward"] == 2 * 5 * 30


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def testfree_involution_op_has_the_layers_output_shape(layout):
    from adaptconv.ops import Involution2d

    m = Involution2d(32, 7, 2)
    x = torch.randn(2, 32, 9, 12).to(memory_format=layout).requires_grad_(True)
    y, ref = free_involution(x, 7, 2, 3, 1), m(x)
    assert y.shape == ref.shape and y.stride() == ref.stride() and not y.any()
    (gx,) = torch.autograd.grad(y.sum(), x)
    assert gx.shape == x.shape and not gx.any()
    torch.library.opcheck(free_involution, (x, 7, 2, 3, 1), test_utils=("test_schema", "test_faketensor"))


def test_switches_replace_what_they_name(monkeypatch):
    from adaptconv.benchmark.harness import create
    from adaptconv.models.rednet import InvolutionBottleneck, RedNetStem
    from adaptconv.ops import Involution2d
    from adaptconv.ops.involution import module as involution

    # the switches act for the rest of the process: monkeypatch puts the originals back after the test
    monkeypatch.setattr(involution, "involution_fused", involution.involution_fused)
    monkeypatch.setattr(Involution2d, "forward", Involution2d.forward)
    monkeypatch.setattr(InvolutionBottleneck, "branch", InvolutionBottleneck.branch)
    monkeypatch.setattr(RedNetStem, "forward", RedNetStem.forward)
    x = torch.randn(2, 3, 64, 64)
    free_aggregation.use_free_generation()
    fused = create("rednet26+fused", num_classes=10)
    fused(x).sum().backward()
    assert not fused.conv1[1].reduce.conv.weight.grad.any()  # the span conv and aggregation sent back zeros
    free_aggregation.use_free_involution()
    model = create("rednet26", num_classes=10)
    model(x).sum().backward()
    involution_params = [p for m in model.modules() if isinstance(m, Involution2d) for p in m.parameters()]
    assert involution_params and all(p.grad is None for p in involution_params)
    assert model.fc.weight.grad is not None
    free_aggregation.use_copy_involution()
    layer = Involution2d(32, 7, 2)
    h = torch.randn(1, 32, 8, 8)
    torch.testing.assert_close(layer(h), h[:, :, ::2, ::2], rtol=0, atol=0)
    free_aggregation.use_copy_with_norms()
    model = create("rednet26", num_classes=10).eval()
    block, stem = model.layer2[0], model.conv1
    with torch.no_grad():
        h = torch.randn(1, 256, 8, 8)
        torch.testing.assert_close(block.branch(h), block.conv1(h)[:, :, ::2, ::2], rtol=0, atol=0)
        torch.testing.assert_close(stem(x), stem[4](stem[0].conv(x)), rtol=0, atol=0)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def testcopy_involution_op_copies_the_output_grid_and_scatters_its_gradient(layout, stride):
    from adaptconv.ops import Involution2d

    x = torch.randn(2, 32, 9, 12).to(memory_format=layout).requires_grad_(True)
    y, ref = copy_involution(x, 7, stride, 3, 1), Involution2d(32, 7, stride)(x)
    assert y.shape == ref.shape and y.stride() == ref.stride()
    torch.testing.assert_close(y, x[:, :, ::stride, ::stride], rtol=0, atol=0)
    g = torch.randn_like(y)
    (gx,) = torch.autograd.grad(y, x, g)
    expected = torch.zeros_like(x)
    expected[:, :, ::stride, ::stride] = g
    assert gx.stride() == x.stride()
    torch.testing.assert_close(gx, expected, rtol=0, atol=0)
    torch.library.opcheck(copy_involution, (x, 7, stride, 3, 1))


def test_free_calibration_levels_skip_the_calibration():
    from adaptconv.ops import SelfCalibratedConv2d

    m = SelfCalibratedConv2d(4).eval()
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(FORWARDS["calibration"](m, x), m.k3(x))
    torch.testing.assert_close(FORWARDS["scconv"](m, x), x)
    out = torch.empty_like(x)
    assert FORWARDS["calibration"](m, x, out) is out
    torch.testing.assert_close(out, m.k3(x))
