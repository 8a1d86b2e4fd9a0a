"""adaptconv: self-calibrated convolution (SCNet, CVPR 2020) and involution (RedNet, CVPR 2021) for PyTorch.

Importing the package registers its models with timm, so ``timm.create_model('rednet50')`` works too.
``adaptconv.detection`` (torchvision's detectors on our backbones) is imported on first use.
"""

from .models import (
    CheckpointError,
    create_model,
    get_pretrained_config,
    list_models,
    load_official_checkpoint,
    official_state_dict,
)
from .ops import Involution2d, SelfCalibratedConv2d, involution_aggregate

__version__ = "0.1.0"


def __getattr__(name: str):
    # The detection builders import torchvision's detection models: load them only when asked for.
    if name == "detection":
        import importlib

        return importlib.import_module(".detection", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckpointError",
    "Involution2d",
    "SelfCalibratedConv2d",
    "create_model",
    "get_pretrained_config",
    "involution_aggregate",
    "list_models",
    "load_official_checkpoint",
    "official_state_dict",
]
