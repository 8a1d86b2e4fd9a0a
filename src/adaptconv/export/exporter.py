"""Export a registered model by name, to ONNX or to a torch.export program (``.pt2``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from ..models import create_model, get_pretrained_config, list_models
from .onnx_export import DEFAULT_OPSET, check_opset, save_onnx
from .program import export_program, input_ranges

__all__ = ["FORMATS", "MIN_INPUT_SIZE", "ExportResult", "export_model"]

#: format -> file suffix
FORMATS = {"onnx": ".onnx", "exported": ".pt2"}

#: the smallest image side the models run at (README: "any input size from 32 px")
MIN_INPUT_SIZE = 32


@dataclass(frozen=True)
class ExportResult:
    """Where the file went and which input sizes it accepts (dimension -> (min, max), max None if unbounded)."""

    path: Path
    ranges: dict[str, tuple[int, int | None]]


def _check_arguments(name: str, fmt: str, input_size: tuple[int, int] | None, opset: int) -> None:
    """Fail at once, before the slow tracing, on anything wrong."""
    if name not in list_models():
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())} (see 'adaptconv list')")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        check_opset(opset)
    if input_size is None:
        return
    if len(input_size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) for s in input_size):
        raise ValueError(f"input_size must be two integers (H, W), got {input_size!r}")
    if min(input_size) < MIN_INPUT_SIZE:
        raise ValueError(
            f"input_size must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} (the models' smallest input), "
            f"got {input_size[0]}x{input_size[1]}"
        )


def export_model(
    name: str,
    fmt: str = "onnx",
    output: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    pretrained: bool | str = False,
    opset: int = DEFAULT_OPSET,
) -> ExportResult:
    """Export classifier ``name`` in eval mode, with a dynamic batch, height and width.

    Args:
        name: a registered model (``adaptconv.list_models()``).
        fmt: ``'onnx'`` (standard operators only; the involution as its unfold formulation) or ``'exported'``
            (``torch.export.save``; keeps the custom op, so loading needs ``import adaptconv``).
        output: the file; default ``<name>.onnx`` / ``<name>.pt2`` in the working directory.
        input_size: (H, W) of the tracing input, default the model's configured size (224, 224). SCNet graphs
            are size-general only when traced at 97 px or more (below, its calibration pool takes other branches).
        pretrained: as ``create_model``: False, True (official weights), or a checkpoint path or URL.
        opset: ONNX opset (>= 17).
    """
    _check_arguments(name, fmt, input_size, opset)
    input_size = tuple(input_size) if input_size is not None else get_pretrained_config(name).input_size[1:]
    path = Path(output) if output is not None else Path(name + FORMATS[fmt])
    model = create_model(name, pretrained=pretrained).eval()
    program = export_program(model, input_size)
    ranges = input_ranges(program)
    if fmt == "onnx":
        cfg = get_pretrained_config(name)
        metadata = dict(
            model=name, input_ranges=ranges, mean=cfg.mean, std=cfg.std, traced_input_size=input_size,
            pretrained=pretrained, producer=f"adaptconv {__version__}",
        )  # fmt: skip
        save_onnx(program, path, opset, metadata)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, path)
    return ExportResult(path, ranges)
