"""benchmarks/saved_memory.py: the bytes autograd saves for the backward pass."""

import torch
import torch.nn as nn

from adaptconv.benchmark.harness import create
from benchmarks.saved_memory import saved_activation_bytes, saved_bytes_per_image


def test_counts_each_saved_storage_once():
    model = nn.Sequential(nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 4, bias=False))
    x = torch.randn(5, 8, requires_grad=True)
    # first matmul: x and its weight; ReLU: its output, which the second matmul saves too, with its weight
    expected = 4 * (5 * 8 + 16 * 8 + 5 * 16 + 4 * 16)
    assert saved_activation_bytes(model, x) == expected


def test_per_image_bytes_leave_out_what_does_not_grow_with_the_batch():
    # a conv saves its input (grows with the batch) and, under autocast, a bfloat16 copy of its weight (does not)
    conv = nn.Conv2d(3, 8, 3, bias=False)
    assert saved_bytes_per_image(conv, (3, 10, 10), batch=2, autocast_dtype=torch.bfloat16) == 3 * 10 * 10 * 2


def test_fused_involution_saves_less_than_stored_kernels():
    stored = saved_bytes_per_image(create("rednet26"), (3, 64, 64), 2, torch.bfloat16)
    fused = saved_bytes_per_image(create("rednet26+fused"), (3, 64, 64), 2, torch.bfloat16)
    assert fused < 0.95 * stored
