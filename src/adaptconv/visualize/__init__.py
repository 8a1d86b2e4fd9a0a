"""Pictures of what the models compute on an image: Grad-CAM, SC-Conv's calibration gates, involution kernels.

Needs the ``visualize`` extra (grad-cam, matplotlib): ``pip install 'adaptconv[visualize]'``.
"""

from .calibration import calibration_gate, draw_calibration_gate, sc_blocks
from .errors import VisualizeError
from .images import ModelInput, default_image_path, load_image, prepare_input
from .involution_kernels import (
    InvolutionKernels,
    draw_involution_kernels,
    draw_kernel_maps,
    involution_blocks,
    involution_kernels,
)
from .pictures import KINDS, Pictures, default_kinds, visualize
from .weights import LoadedModel, load_model

__all__ = [
    "KINDS",
    "InvolutionKernels",
    "LoadedModel",
    "ModelInput",
    "Pictures",
    "VisualizeError",
    "calibration_gate",
    "default_image_path",
    "default_kinds",
    "draw_calibration_gate",
    "draw_involution_kernels",
    "draw_kernel_maps",
    "involution_blocks",
    "involution_kernels",
    "load_image",
    "load_model",
    "prepare_input",
    "sc_blocks",
    "visualize",
]
