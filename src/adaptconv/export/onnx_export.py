"""ONNX export, with the involution aggregation and the self-calibration ops written in standard ONNX operators.

ONNX knows nothing of the custom ops ``adaptconv::involution_aggregate``, ``adaptconv::calibrate`` and
``adaptconv::calibration_pool``. Before translating, the exported program is decomposed with a table that maps
each op to the package's plain formulation of the same equation (for the aggregation ``involution_aggregate_unfold``:
unfold, multiply, sum over taps; for the calibration ops the official code's up-sampling, sigmoid and pooling);
torch.export traces them into aten ops that the ONNX exporter translates (Im2Col-style gathers, Mul, ReduceSum,
Resize, Sigmoid, AveragePool). This keeps one formula per formulation (no second copy of the
equation in ONNX script), leaves the models and the op untouched, and changes no global state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch.export import ExportedProgram

from ..ops.involution.reference import involution_aggregate_unfold
from ..ops.self_calibration.reference import calibrate_reference, calibration_pool_reference

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "check_opset", "decompose_custom_ops", "reference_decompositions", "save_onnx"]

#: the opset the exporter emits natively; lower ones go through ONNX's version converter
DEFAULT_OPSET = 18
MIN_OPSET = 17

INPUT_NAME = "image"
OUTPUT_NAME = "logits"


def reference_decompositions() -> dict:
    """Decomposition table: each custom op -> its plain formulation in standard ops."""
    ops = torch.ops.adaptconv
    return {ops.involution_aggregate.default: involution_aggregate_unfold,
            ops.calibrate.default: calibrate_reference,
            ops.calibration_pool.default: calibration_pool_reference}  # fmt: skip


def decompose_custom_ops(program: ExportedProgram) -> ExportedProgram:
    """``program`` with every custom op replaced by standard aten ops (unchanged if it has none)."""
    table = reference_decompositions()
    if not any(node.target in table for node in program.graph.nodes):
        return program  # nothing to replace, and re-tracing a deep network costs seconds
    return program.run_decompositions(table)


def check_opset(opset: int) -> int:
    """``opset`` if the exporter supports it, else a ValueError saying what to pass."""
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {MIN_OPSET}, got {opset!r}; the default is {DEFAULT_OPSET}")
    return opset


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxscript"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f"ONNX export needs the package(s) {', '.join(missing)}; install them with: pip install 'adaptconv[export]'"
        )


def save_onnx(
    program: ExportedProgram,
    path: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    metadata: dict | None = None,
) -> Path:
    """Write ``program`` as an ONNX model (input ``image``, output ``logits``; the program's dynamic dimensions
    stay dynamic) with ``metadata`` in the model's metadata_props (values as JSON). Returns the path."""
    check_opset(opset)
    _require_onnx()
    onnx_program = torch.onnx.export(
        decompose_custom_ops(program),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        verbose=False,
    )
    for key, value in (metadata or {}).items():
        onnx_program.model.metadata_props[key] = json.dumps(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx_program.save(path)
    return path
