"""What a training step keeps for its backward pass: the bytes of the tensors autograd saves in the forward.

Peak training memory on a GPU is roughly parameters + gradients + optimizer state + these saved activations +
transient workspace; at the batch sizes of training the saved activations dominate. Unlike the peak, they do not
depend on the device's allocator, so they can be compared on any machine (a CPU included, where PyTorch keeps no
peak-memory statistics). Used by ``saved_activations.py`` (and by the model tests).
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["saved_activation_bytes", "saved_bytes_per_image"]


def saved_activation_bytes(model: nn.Module, x: torch.Tensor, autocast_dtype: torch.dtype | None = None) -> int:
    """Bytes of the distinct storages that autograd saves for backward during ``model(x)`` in training mode.

    Tensors that share a storage (views, a parameter saved by several ops) count once; parameters count too, as
    they are saved by the ops that use them (subtract ``sum(p.numel() * p.element_size())`` for activations alone
    where every parameter is used).
    """
    storages: dict[tuple[str, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[(str(t.device), s.data_ptr())] = s.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        with torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            model(x)
    return sum(storages.values())


def saved_bytes_per_image(model: nn.Module, image_shape: tuple[int, int, int], batch: int = 4,
                          autocast_dtype: torch.dtype | None = None) -> float:  # fmt: skip
    """What one more image adds to the saved tensors: the difference between batches ``2 * batch`` and ``batch``,
    over ``batch``. Free of what does not grow with the batch (autocast's low-precision copies of the weights),
    it is the activation memory per image of a training step."""
    device = next(model.parameters()).device
    saved = [saved_activation_bytes(model, torch.randn(b, *image_shape, device=device), autocast_dtype)
             for b in (batch, 2 * batch)]  # fmt: skip
    return (saved[1] - saved[0]) / batch
