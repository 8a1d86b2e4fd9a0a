"""The most that faster involution kernels can give RedNet: the model, in the same run, with an aggregation that costs
(almost) nothing, then with kernel generation's last conv and the aggregation both costing nothing, then with
whole involution layers costing nothing, then with each involution only copying its input to its output, and
last with that copy also replacing the norms and activations on each side of it.

    python -m benchmarks.free_aggregation [--models rednet50] [--mode eager reduce-overhead] [--task train inference]
                                          [--levels aggregation generation involution copy copy_norms] [--name SUFFIX]

Measures the baseline ResNet and the model as ``adaptconv benchmark`` does (bf16 autocast, channels_last, batch
128 train / 256 inference), then the model again with stand-ins (the first three only write zero-filled outputs):

- ``aggregation``: the CUDA kernels of the aggregation op and of its backward write zeros (y; the gradients of x
  and of the kernels). A real kernel must also read x and the kernels, so the stand-in is faster than any kernel
  can be: its img/s bounds the model's speed with the present kernel generation and layers around it.
- ``generation``: the fused layer (``+fused``: span conv and aggregation in one op, the kernels never stored)
  replaced by an op that writes zeros forward and backward: what a fused kernel that made the span conv and the
  aggregation free would give, i.e. the speed of the rest of the model (pool, reducing conv, norm, activation,
  the 1x1 convs and norms of the bottlenecks, the stem, the head).
- ``involution``: every ``Involution2d`` (stride pool, reducing conv, norm, activation, span conv, aggregation)
  replaced by an op that writes zeros of its output's shape forward and backward: what one kernel fusing the
  whole layer could give at best. Its parameters then get no gradients (the optimizer skips them), which only
  loosens the bound. This is the speed of the network around the involutions.
- ``copy``: every ``Involution2d`` replaced by the least memory traffic a real layer has: forward, a copy of its
  input's output-sized sub-grid (all of x at stride 1; at stride 2 only every other row and column, less than a
  real layer reads), backward, the gradient written into a tensor of the input's shape. Any kernel computing the
  layer moves at least these bytes, so this level bounds the model's speed with one kernel a layer running at
  copy bandwidth and doing no arithmetic.
- ``copy_norms``: as ``copy``, and the copy also takes the place of the norms and activations just before and just
  after each involution (in a bottleneck: the copy reads the first 1x1 conv's output, and the last 1x1 conv reads
  the copy; in the stem likewise between its two convs): the bound of one kernel a layer that also applies those
  point-wise ops as it loads and stores, at copy speed.

The switches stay on for the rest of the process, so the levels run in this order. What each replaces, through
public names of the package:

- ``aggregation``: the CUDA kernels of the ops ``adaptconv::involution_aggregate`` and
  ``adaptconv::involution_aggregate_backward`` (``torch.library.register_kernel``);
- ``generation``: the function ``Involution2d`` calls on its fused path, the module attribute
  ``adaptconv.ops.involution.module.involution_fused``;
- ``involution`` and ``copy``: the method ``adaptconv.ops.Involution2d.forward``;
- ``copy_norms``: also the methods ``adaptconv.models.InvolutionBottleneck.branch`` and
  ``adaptconv.models.rednet.RedNetStem.forward``.

Writes benchmarks/results/free_aggregation[-<name>]-cuda.json and a table.
"""

from __future__ import annotations

import argparse

import torch

from adaptconv.models import InvolutionBottleneck
from adaptconv.models.rednet import RedNetStem
from adaptconv.ops import Involution2d, involution_output_size
from adaptconv.ops.common import empty_like_layout
from adaptconv.ops.involution import module as involution

from . import bound


def _zeros(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Zeros in ``like``'s layout, as the op's fake implementation describes its outputs."""
    return empty_like_layout(shape, like, like.dtype).zero_()


def free_aggregate(x, weight, kernel_size, stride, padding, dilation):
    """The aggregation's stand-in: zeros of its output's shape, in ``x``'s layout."""
    h, w = involution_output_size(x.shape[2], x.shape[3], kernel_size, stride, padding, dilation)
    return _zeros((x.shape[0], x.shape[1], h, w), x)


def free_aggregate_backward(grad_out, x, weight, kernel_size, stride, padding, dilation):
    """The aggregation backward's stand-in: zero gradients of x and the kernels, in their layouts."""
    return _zeros(tuple(x.shape), x), _zeros(tuple(weight.shape), weight)


@torch.library.custom_op("adaptconv_bench::free_generation", mutates_args=())
def free_generation(x: torch.Tensor, reduced: torch.Tensor, span_weight: torch.Tensor, span_bias: torch.Tensor,
                    kernel_size: int, stride: int, padding: int, dilation: int) -> torch.Tensor:  # fmt: skip
    """The fused layer's stand-in (``involution_fused``'s arguments): zeros forward, zero gradients backward."""
    return free_aggregate(x, None, kernel_size, stride, padding, dilation)


@free_generation.register_fake
def _(x, reduced, span_weight, span_bias, kernel_size, stride, padding, dilation):
    n, c = x.shape[:2]
    return empty_like_layout((n, c, reduced.shape[2], reduced.shape[3]), x, x.dtype)


def _free_generation_backward(ctx, grad_out: torch.Tensor):
    return *(_zeros(tuple(t.shape), t) for t in ctx.saved_tensors), None, None, None, None


def _save_tensors(ctx, inputs, output) -> None:
    ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))


free_generation.register_autograd(_free_generation_backward, setup_context=_save_tensors)


def use_free_generation() -> None:
    """From now on ``Involution2d(fused=True)`` runs :func:`free_generation` (for the rest of the process)."""
    involution.involution_fused = free_generation


@torch.library.custom_op("adaptconv_bench::free_involution", mutates_args=())
def free_involution(x: torch.Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """A whole involution layer's stand-in: zeros of its output's shape forward, a zero gradient of x backward."""
    return free_aggregate(x, None, kernel_size, stride, padding, dilation)


def _involution_output_fake(x, kernel_size, stride, padding, dilation):
    """The involution layer's output: its shape and ``x``'s layout."""
    h, w = involution_output_size(x.shape[2], x.shape[3], kernel_size, stride, padding, dilation)
    return empty_like_layout((x.shape[0], x.shape[1], h, w), x, x.dtype)


def _free_involution_backward(ctx, grad_out: torch.Tensor):
    (x,) = ctx.saved_tensors
    return _zeros(tuple(x.shape), x), None, None, None, None


free_involution.register_fake(_involution_output_fake)
free_involution.register_autograd(_free_involution_backward, setup_context=_save_tensors)


def use_free_involution() -> None:
    """From now on every ``Involution2d`` runs :func:`free_involution` (for the rest of the process)."""
    Involution2d.forward = lambda self, x: free_involution(x, self.kernel_size, self.stride, self.padding,
                                                           self.dilation)  # fmt: skip


@torch.library.custom_op("adaptconv_bench::copy_involution", mutates_args=())
def copy_involution(x: torch.Tensor, kernel_size: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """A layer's least memory traffic: its input's output-sized sub-grid copied forward, the gradient scattered back
    into an input-shaped tensor backward."""
    h, w = involution_output_size(x.shape[2], x.shape[3], kernel_size, stride, padding, dilation)
    sub = x[:, :, ::stride, ::stride][:, :, :h, :w]
    return empty_like_layout((x.shape[0], x.shape[1], h, w), x, x.dtype).copy_(sub)


copy_involution.register_fake(_involution_output_fake)


def _copy_involution_backward(ctx, grad_out: torch.Tensor):
    (x,) = ctx.saved_tensors
    stride = ctx.stride
    grad = _zeros(tuple(x.shape), x) if stride > 1 else empty_like_layout(tuple(x.shape), x, grad_out.dtype)
    grad[:, :, ::stride, ::stride][:, :, : grad_out.shape[2], : grad_out.shape[3]].copy_(grad_out)
    return grad, None, None, None, None


def _save_input_and_stride(ctx, inputs, output) -> None:
    ctx.save_for_backward(inputs[0])
    ctx.stride = inputs[2]


copy_involution.register_autograd(_copy_involution_backward, setup_context=_save_input_and_stride)


def _copy_of(layer: Involution2d, x: torch.Tensor) -> torch.Tensor:
    """``layer``'s stand-in: :func:`copy_involution` with its geometry."""
    return copy_involution(x, layer.kernel_size, layer.stride, layer.padding, layer.dilation)


def use_copy_involution() -> None:
    """From now on every ``Involution2d`` runs :func:`copy_involution` (for the rest of the process)."""
    Involution2d.forward = _copy_of


def use_copy_with_norms() -> None:
    """From now on every RedNet bottleneck's branch is conv1 -> copy -> (conv3, outside the branch), and the RedNet
    stem is conv -> copy -> conv block: the norms and activations around each involution are gone with it."""
    InvolutionBottleneck.branch = lambda self, x: _copy_of(self.conv2, self.conv1(x))
    RedNetStem.forward = lambda self, x: self[4](_copy_of(self[1], self[0].conv(x)))


def use_free_aggregation() -> None:
    """From now on the aggregation op and its backward write zeros on CUDA (for the rest of the process)."""
    torch.library.register_kernel("adaptconv::involution_aggregate", "cuda", free_aggregate)
    torch.library.register_kernel("adaptconv::involution_aggregate_backward", "cuda", free_aggregate_backward)


#: what is made free -> (the switch, the model variant it applies to), in the order they run (the switches stay on)
LEVELS = {"aggregation": (use_free_aggregation, ""), "generation": (use_free_generation, "+fused"),
          "involution": (use_free_involution, ""), "copy": (use_copy_involution, ""),
          "copy_norms": (use_copy_with_norms, "")}  # fmt: skip


def parser() -> argparse.ArgumentParser:
    return bound.parser("free_aggregation", __doc__, ["rednet50"], ["eager"], LEVELS)


def main(argv: list[str] | None = None) -> None:
    bound.main(parser().parse_args(argv), LEVELS)


if __name__ == "__main__":
    main()
