"""The two input-adaptive operators: self-calibrated convolution and involution."""

from . import (
    calibration_triton,  # noqa: F401  (registers the CUDA kernels of the self-calibration ops)
    involution_cpu,  # noqa: F401  (registers the CPU kernels of the aggregation op)
    involution_triton,  # noqa: F401  (registers the CUDA kernels of the aggregation)
)
from .calibration import calibrate
from .involution import Involution2d
from .involution_aggregate import involution_aggregate, involution_aggregate_unfold, involution_output_size
from .involution_fused import involution_fused
from .self_calibrated import CalibrationPool, SelfCalibratedConv2d

__all__ = [
    "CalibrationPool",
    "Involution2d",
    "SelfCalibratedConv2d",
    "calibrate",
    "involution_aggregate",
    "involution_aggregate_unfold",
    "involution_fused",
    "involution_output_size",
]
