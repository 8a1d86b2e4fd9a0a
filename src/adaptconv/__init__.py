"""adaptconv: self-calibrated convolution (SCNet, CVPR 2020) and involution (RedNet, CVPR 2021) for PyTorch.

Importing the package registers its models with timm, so ``timm.create_model('rednet50')`` works too.
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
