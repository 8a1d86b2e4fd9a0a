"""models/recompute.py: a part recomputed in the backward pass gives the plain part's outputs, gradients, running
statistics and counters, for plain batch norm (exponential and cumulative averages) and synchronised batch norm."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from adaptconv.models.recompute import recomputed


@pytest.mark.parametrize(
    "norm",
    [lambda c: nn.BatchNorm2d(c), lambda c: nn.BatchNorm2d(c, momentum=None), lambda c: nn.SyncBatchNorm(c)],
    ids=["batch_norm", "cumulative_average", "sync_batch_norm"],
)
def test_recomputed_part_is_the_plain_part(norm):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm(4), nn.ReLU(), nn.Conv2d(4, 4, 1), norm(4)).double()
    part = copy.deepcopy(plain)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    for step in range(2):  # the second step starts from the statistics and counters the first one left
        xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        ya, yb = plain(xa), recomputed(part, part, xb)
        torch.testing.assert_close(yb, ya, rtol=0, atol=0)
        g = torch.cos(torch.arange(ya.numel(), dtype=torch.float64)).view_as(ya)
        ya.backward(g)
        yb.backward(g)
        torch.testing.assert_close(xb.grad, xa.grad, rtol=0, atol=0)
        for (name, p), q in zip(plain.named_parameters(), part.parameters(), strict=True):
            torch.testing.assert_close(q.grad, p.grad, rtol=0, atol=0, msg=name)
        assert part.state_dict().keys() == plain.state_dict().keys()  # the scratch counter stays out of it
        for (name, a), b in zip(plain.state_dict().items(), part.state_dict().values(), strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
        assert int(part[1].num_batches_tracked) == step + 1
        assert part[1].momentum == plain[1].momentum  # put back after the recomputation
