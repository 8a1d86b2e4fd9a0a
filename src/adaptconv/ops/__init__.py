"""The two input-adaptive operators, one sub-package each: ``involution`` (RedNet) and ``self_calibration`` (SCNet);
``common`` holds what both share (argument checks, tensor-layout helpers)."""

from .involution import (
    Involution2d,
    involution_aggregate,
    involution_aggregate_unfold,
    involution_fused,
    involution_output_size,
)
from .self_calibration import CalibrationPool, SelfCalibratedConv2d, SelfCalibration, calibrate, calibration_pool

__all__ = [
    "CalibrationPool",
    "Involution2d",
    "SelfCalibratedConv2d",
    "SelfCalibration",
    "calibrate",
    "calibration_pool",
    "involution_aggregate",
    "involution_aggregate_unfold",
    "involution_fused",
    "involution_output_size",
]
