"""What both operators share (``adaptconv.ops.common``): the tensor helpers, the first-call import of kernels."""

from __future__ import annotations

import torch

from adaptconv.ops.common import (
    accumulator_dtype,
    as_layout,
    empty_like_layout,
    is_channels_last,
    memory_format_of,
    sample_extent,
)


def test_channels_last_is_read_from_the_strides():
    x = torch.randn(2, 3, 4, 5)
    assert not is_channels_last(x) and memory_format_of(x) is torch.contiguous_format
    cl = x.to(memory_format=torch.channels_last)
    assert is_channels_last(cl) and memory_format_of(cl) is torch.channels_last
    assert is_channels_last(cl[:, 1:])  # a channel slice keeps the unit channel stride
    assert not is_channels_last(torch.randn(2, 1, 4, 5).to(memory_format=torch.channels_last))  # one channel
    assert not is_channels_last(torch.randn(5, 3).t())  # 2-D with a unit-stride second axis
    assert empty_like_layout((1, 3, 2, 2), cl, torch.float16).is_contiguous(memory_format=torch.channels_last)


def test_as_layout_gives_the_strides_of_a_new_tensor_copying_only_when_needed():
    cl = torch.randn(2, 6, 3, 3).to(memory_format=torch.channels_last)
    assert as_layout(cl, torch.channels_last) is cl
    # 1x1 maps: contiguous(memory_format=channels_last) keeps these strides, a new channels_last tensor has others
    ambiguous = torch.randn(2, 6, 1, 1)
    assert ambiguous.contiguous(memory_format=torch.channels_last).stride() == (6, 1, 1, 1)
    made = as_layout(ambiguous, torch.channels_last)
    assert made.stride() == torch.empty_like(ambiguous, memory_format=torch.channels_last).stride() == (6, 1, 6, 6)
    assert torch.equal(made, ambiguous)


def test_sample_extent_and_accumulator_dtype():
    x = torch.empty(4, 3, 5, 7)
    assert sample_extent(x) == 3 * 5 * 7 - 1
    assert sample_extent(x.to(memory_format=torch.channels_last)) == 3 * 5 * 7 - 1
    assert accumulator_dtype(torch.bfloat16) is accumulator_dtype(torch.float16) is torch.float32
    assert accumulator_dtype(torch.float64) is torch.float64
