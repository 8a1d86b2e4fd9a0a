"""Which implementation of the self-calibration's ops runs where: registered here, in one place, by op name.

==========================================  =================  =======================================================
op                                          CPU                CUDA (where triton is installed)
==========================================  =================  =======================================================
``adaptconv::calibrate``                    reference          ``cuda.calibrate``: the Triton kernels of
``adaptconv::calibrate_backward``           reference          ``triton_channels_last`` for channels_last tensors of
``adaptconv::calibration_pool``             reference          one dtype from ``cuda.MIN_ELEMENTS`` elements on; the
``adaptconv::calibration_pool_backward``    reference          reference for NCHW, float64 and small maps
==========================================  =================  =======================================================

Every op's default implementation (``op.py``) is its reference (``reference.py``, the official code's ops). The CUDA
module imports triton, so it is imported on the first call on a CUDA tensor, not with the package.
"""

from __future__ import annotations

import torch

from ..common import TRITON_INSTALLED, imported_on_first_call
from . import op  # noqa: F401  (defines the ops, which must exist before kernels are registered)

_CUDA = f"{__package__}.cuda"

if TRITON_INSTALLED:
    for _op in ("calibrate", "calibrate_backward", "calibration_pool", "calibration_pool_backward"):
        torch.library.register_kernel(f"adaptconv::{_op}", "cuda", imported_on_first_call(_CUDA, _op))
