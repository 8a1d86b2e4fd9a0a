"""Argument checks shared by the operators: clear errors instead of failures deep inside a kernel."""

from __future__ import annotations

import torch

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_feature_map(x: torch.Tensor, name: str = "x", channels: int | None = None) -> None:
    """Raise a clear error unless ``x`` is a floating-point (N, C, H, W) tensor with ``channels`` channels."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{name} must be a 4-D tensor (N, C, H, W), got {x.dim()}-D with shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be float16, bfloat16, float32 or float64, got {x.dtype}; convert it with x.float()"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels but this layer was built for {channels} channels")


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    """Return ``value`` if it is an integer >= ``minimum``, else raise a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_kernel_size(kernel_size: int) -> int:
    """Kernel sizes must be odd so that the kernel has a centre tap."""
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (3, 5, 7, ...), got {kernel_size}")
    return kernel_size


def output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a sliding window along one axis (the same rule as ``nn.Conv2d``)."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
