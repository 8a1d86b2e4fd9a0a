"""``torch.export`` of a classifier with a dynamic batch and image size, and the sizes the exported graph accepts."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch.export import Dim, ExportedProgram

__all__ = ["SAMPLE_BATCH", "export_program", "input_ranges"]

#: batch of the tracing input. torch.export specialises a dimension traced at size 0 or 1 to a constant, so the
#: sample has 2 images; the batch is declared dynamic from 1 up.
SAMPLE_BATCH = 2

_DIM_NAMES = ("batch", "channels", "height", "width")


def export_program(
    model: nn.Module, input_size: tuple[int, int] = (224, 224), in_chans: int = 3, dynamic: bool | str = True
) -> ExportedProgram:
    """Export ``model`` in eval mode, traced on a random (2, in_chans, H, W) input.

    With ``dynamic``, the batch is symbolic (any size from 1; an error if the model fixed it), and so are height
    and width (``Dim.AUTO``: torch.export narrows them to the range the model's code allows, see
    ``input_ranges``); the channels are fixed. ``dynamic='batch'`` keeps the image size fixed (faster to
    trace: no symbolic sizes through the network); ``False`` fixes everything. The involution
    aggregation stays the custom op ``adaptconv::involution_aggregate``: loading the program needs
    ``import adaptconv``.
    """
    if dynamic not in (True, False, "batch"):
        raise ValueError(f"dynamic must be True, False or 'batch', got {dynamic!r}")
    model.eval()
    param = next(model.parameters())
    x = torch.randn(SAMPLE_BATCH, in_chans, *input_size, device=param.device, dtype=param.dtype)
    dims = {0: Dim("batch", min=1)} if dynamic else {}
    if dynamic is True:
        dims.update({2: Dim.AUTO, 3: Dim.AUTO})
    dynamic_shapes = (dims,) if dims else None
    with torch.no_grad():
        return torch.export.export(model, (x,), dynamic_shapes=dynamic_shapes)


def input_ranges(program: ExportedProgram) -> dict[str, tuple[int, int | None]]:
    """The sizes the program accepts for each input dimension: name -> (min, max), ``max`` None for unbounded.

    These are the ranges torch.export proved while tracing. SCNet's calibration pool, for example, takes a
    different branch on maps smaller than its 4x4 window, so an SCNet exported at 224 px accepts H, W >= 97.
    """
    user_input = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == user_input)
    ranges = {}
    for name, size in zip(_DIM_NAMES, node.meta["val"].shape, strict=True):
        if isinstance(size, int):
            ranges[name] = (size, size)
            continue
        vr = program.range_constraints[size.node.expr]
        ranges[name] = (int(vr.lower), None if math.isinf(float(vr.upper)) else int(vr.upper))
    return ranges
