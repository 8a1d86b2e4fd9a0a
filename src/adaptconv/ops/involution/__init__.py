"""Involution (Li et al., "Involution: Inverting the Inherence of Convolution for Visual Recognition", CVPR 2021).

Read top-down: ``module.py`` (the layer, ``Involution2d``: kernel generation and aggregation, Eq. 4 and 6), ``op.py``
(the aggregation as custom ops, with fake, autograd and FLOP formulas), ``reference.py`` (the formula in plain PyTorch
ops), ``dispatch.py`` (which implementation runs where), ``cpu.py`` (the CPU implementation), ``cuda.py`` (the CUDA
implementation) and the Triton kernels it launches (``triton_channels_last.py``, ``triton_nchw.py``,
``triton_fused.py``, ``triton_common.py``).
"""

from . import dispatch  # noqa: F401  (registers the CPU and CUDA implementations of the ops)
from .module import Involution2d
from .op import involution_aggregate, involution_fused, involution_output_size
from .reference import involution_aggregate_unfold

__all__ = ["Involution2d", "involution_aggregate", "involution_aggregate_unfold", "involution_fused",
           "involution_output_size"]  # fmt: skip
