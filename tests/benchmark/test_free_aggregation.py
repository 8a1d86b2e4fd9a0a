"""benchmarks/free_aggregation.py's stand-in ops and benchmarks/aggregation_floor.py's byte counts (the timing
itself needs a GPU)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_free_aggregation_writes_zeros_of_the_ops_shapes(layout):
    from free_aggregation import _free_backward, _free_forward

    from adaptconv.ops import involution_aggregate

    x = torch.randn(2, 32, 9, 12).to(memory_format=layout)
    w = torch.randn(2, 2 * 49, 5, 6).to(memory_format=layout)
    y = _free_forward(x, w, 7, 2, 3, 1)
    ref = involution_aggregate(x, w, 7, 2, 3, 1)
    assert y.shape == ref.shape and y.stride() == ref.stride() and not y.any()
    gx, gw = _free_backward(torch.ones_like(y), x, w, 7, 2, 3, 1)
    assert gx.stride() == x.stride() and gw.stride() == w.stride() and not (gx.any() or gw.any())


def test_free_generation_op_gives_every_input_a_gradient():
    from free_aggregation import _free_generation

    x = torch.randn(2, 32, 8, 8, requires_grad=True)
    reduced = torch.randn(2, 8, 4, 4, requires_grad=True)
    span_w = torch.randn(98, 8, requires_grad=True)
    span_b = torch.randn(98, requires_grad=True)
    args = (x, reduced, span_w, span_b, 7, 2, 3, 1)
    y = _free_generation(*args)
    assert y.shape == (2, 32, 4, 4) and not y.any()
    grads = torch.autograd.grad(y.sum(), (x, reduced, span_w, span_b))
    assert [g.shape for g in grads] == [t.shape for t in (x, reduced, span_w, span_b)]
    torch.library.opcheck(_free_generation, args, test_utils=("test_schema", "test_faketensor"))


def test_floor_counts_each_involutions_tensors():
    from aggregation_floor import floor_bytes, involution_tensors

    tensors = involution_tensors("rednet26", batch=2, img_size=64)
    stem = tensors[0]  # the stem's involution: C=32 at 32x32 (after the stride-2 conv), K=3, 2 groups
    assert stem == dict(x=2 * 32 * 32 * 32, y=2 * 32 * 32 * 32, kernels=2 * 2 * 9 * 32 * 32, reduced=2 * 8 * 32 * 32)
    assert len(tensors) == 1 + 8  # the stem's, then one a bottleneck
    one = floor_bytes([dict(x=10, y=5, kernels=30, reduced=4)], bytes_per_value=2)
    assert one["stored kernels, forward"] == 2 * (10 + 30 + 5)
    assert one["stored kernels, forward + backward"] == 2 * (10 + 30 + 5 + 5 + 20 + 60)
    assert one["fused, forward + backward"] == 2 * (10 + 4 + 5 + 5 + 20 + 8)
