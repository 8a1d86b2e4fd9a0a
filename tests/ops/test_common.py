"""What both operators share (``adaptconv.ops.common``): the tensor helpers, the first-call import of kernels."""

from __future__ import annotations

import subprocess
import sys

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


def test_a_cuda_implementation_is_imported_on_its_first_call_only():
    """The registered CUDA functions import their module (and triton) when first called, not with the package."""
    code = (
        "import sys\n"
        "import adaptconv.ops\n"
        "from adaptconv.ops.common import imported_on_first_call\n"
        "assert 'adaptconv.ops.involution.cuda' not in sys.modules\n"
        "assert 'adaptconv.ops.self_calibration.cuda' not in sys.modules\n"
        "f = imported_on_first_call('adaptconv.ops.involution.cpu', 'use_windows')\n"
        "assert f.__name__ == 'use_windows'\n"
        "import torch\n"
        "print(f(torch.empty(1, 16, 3, 3), torch.empty(1, 49, 3, 3), 7))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"
