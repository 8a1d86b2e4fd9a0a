"""Helpers shared by the tests (importable as ``helpers``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

#: the reference data beside the clone in CI; a user's clone has none, and tests that need it skip
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def require_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data {path} is not present (it sits beside the repository in CI only)")
    return path


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref||, computed in float64."""
    out, ref = out.double(), ref.double()
    return ((out - ref).norm() / ref.norm().clamp_min(1e-300)).item()
