"""Self-calibrated convolution (Liu et al., "Improving Convolutional Networks with Self-Calibrated Convolutions",
CVPR 2020).

Read top-down: ``module.py`` (the layer, ``SelfCalibratedConv2d``: K4(K3(x) * sigmoid(x + Up(K2(AvgPool_r(x)))))),
``op.py`` (its memory-bound steps, the gate and K2's pooling, as custom ops with fake and autograd formulas),
``reference.py`` (those steps in the official code's PyTorch ops), ``dispatch.py`` (which implementation runs where),
``cuda.py`` (the CUDA implementation) and the Triton kernels it launches (``triton_channels_last.py``), ``cpu.py``
(the 3x3 convolutions' route to oneDNN in batch-1 CPU inference).
"""

from . import dispatch  # noqa: F401  (registers the CUDA implementations of the ops)
from .module import CalibrationPool, SelfCalibratedConv2d, SelfCalibration
from .op import calibrate, calibration_pool

__all__ = ["CalibrationPool", "SelfCalibratedConv2d", "SelfCalibration", "calibrate", "calibration_pool"]
