"""Which implementation of the involution's ops runs where: registered here, in one place, by op name.

=====================================  ===========================  ==============================================
op                                     CPU                          CUDA (where triton is installed)
=====================================  ===========================  ==============================================
``adaptconv::involution_aggregate``    ``cpu.aggregate``            ``cuda.aggregate``: the CUDA C++ of
                                                                    ``nvrtc_channels_last`` for dense channels_last
``adaptconv::involution_aggregate_``   ``cpu.aggregate_backward``   ``cuda.aggregate_backward``: Triton kernels,
``backward``                                                        ``triton_channels_last`` for channels_last
                                                                    tensors, ``triton_nchw`` for NCHW and others
                                                                    (``ADAPTCONV_NVRTC`` moves either)
``adaptconv::involution_fused``        ``reference`` (op default)   ``cuda.fused``: ``triton_fused``
=====================================  ===========================  ==============================================

Every op's default implementation (``op.py``) is its reference (``reference.py``): it serves the devices and the cases
that no entry above takes (float64, mixed dtypes, CUDA without triton). The CUDA module imports triton, so it is
imported on the first call on a CUDA tensor, not with the package.
"""

from __future__ import annotations

import torch

from ..common import TRITON_INSTALLED, imported_on_first_call
from . import cpu, op  # noqa: F401  (op defines the ops, which must exist before kernels are registered)

_CUDA = f"{__package__}.cuda"

torch.library.register_kernel("adaptconv::involution_aggregate", "cpu", cpu.aggregate)
torch.library.register_kernel("adaptconv::involution_aggregate_backward", "cpu", cpu.aggregate_backward)
if TRITON_INSTALLED:
    for _op, _name in [("involution_aggregate", "aggregate"), ("involution_aggregate_backward", "aggregate_backward"),
                       ("involution_fused", "fused")]:  # fmt: skip
        torch.library.register_kernel(f"adaptconv::{_op}", "cuda", imported_on_first_call(_CUDA, _name))
