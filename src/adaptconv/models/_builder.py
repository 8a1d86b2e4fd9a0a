"""Model construction shared by all variants: timm's builder, our pretrained loading, timm's feature wrappers."""

from __future__ import annotations

import logging
from pathlib import Path

import torch.nn as nn
from timm.models import adapt_input_conv, build_model_with_cfg

from .checkpoint import CheckpointError, checkpoint_dir, fit_state_dict, official_key_map, read_checkpoint
from .pretrained import get_pretrained_config, timm_cfg

_logger = logging.getLogger(__name__)

#: default ``out_indices`` of ``features_only`` models: the outputs of the four stages (strides 4, 8, 16, 32)
STAGE_INDICES = (1, 2, 3, 4)


def timm_default_cfgs(names: list[str]) -> dict[str, dict]:
    """timm's ``default_cfgs`` for a model module, from our one configuration table."""
    return {name: timm_cfg(name) for name in names}


def feature_wrapper(model: nn.Module, out_indices, feature_cls) -> nn.Module:
    """timm's feature class (``'list'``, ``'dict'``, ``'hook'``, ``'getter'`` or a class) around ``model``."""
    import timm.models as tm

    classes = {
        "list": "FeatureListNet",
        "dict": "FeatureDictNet",
        "hook": "FeatureHookNet",
        "getter": "FeatureGetterNet",
    }
    if isinstance(feature_cls, str):
        if feature_cls not in classes or not hasattr(tm, classes[feature_cls]):
            raise ValueError(
                f"feature_cls must be one of {sorted(classes)} or a timm feature class, got {feature_cls!r}"
            )
        feature_cls = getattr(tm, classes[feature_cls])
    wrapped = feature_cls(model, out_indices=out_indices)
    wrapped.pretrained_cfg = model.pretrained_cfg
    wrapped.default_cfg = model.pretrained_cfg
    return wrapped


def official_weights_file(variant: str, cache_dir: str | None = None) -> Path:
    """Where the official weights of ``variant`` are (or would be) kept: in torch.hub's checkpoint cache, or
    ``cache_dir``, under the file name of its pretrained configuration."""
    return checkpoint_dir(cache_dir) / get_pretrained_config(variant).file_name


def _pretrained_source(variant: str, pretrained, cache_dir: str | None):
    """Resolve ``pretrained`` (True, a path or URL, or a state_dict) to something ``read_checkpoint`` reads."""
    if pretrained is not True:
        return pretrained
    cfg = get_pretrained_config(variant)
    if not cfg.released:
        raise CheckpointError(
            f"{variant}: the authors released no pretrained weights for this model. Train it, or pass a checkpoint "
            f"of your own: create_model('{variant}', pretrained='/path/to/file.pth')."
        )
    if cfg.url:
        return cfg.url
    cached = official_weights_file(variant, cache_dir)
    if cached.is_file():
        return str(cached)
    raise CheckpointError(
        f"{variant}: the official weights cannot be downloaded by a program (they are behind a share link). "
        f"Download them by hand from {cfg.download_page}, then either put the file at {cached} or pass its path: "
        f"create_model('{variant}', pretrained='/path/to/file.pth')."
    )


def load_pretrained(model: nn.Module, variant: str, pretrained, cache_dir: str | None = None) -> None:
    """Load official weights into a freshly built classifier, adapting to its ``num_classes`` and ``in_chans``.

    A classifier of another size is left at its initialisation; an input conv for other than 3 channels gets the
    pretrained RGB filters summed/repeated by timm's ``adapt_input_conv``. Everything else must fit exactly.
    """
    cfg = get_pretrained_config(variant)
    source = _pretrained_source(variant, pretrained, cache_dir)
    # The official file name and hash apply to the official weights only, not to a URL the user gives.
    official = dict(file_name=cfg.file_name, sha256_prefix=cfg.sha256_prefix) if pretrained is True else {}
    state = read_checkpoint(source, cache_dir=cache_dir, **official)
    skip: tuple[str, ...] = ()
    if model.num_classes != cfg.num_classes:
        skip = (cfg.classifier + ".",)
        _logger.info("%s: classifier (%d classes) left at its initialisation", variant, model.num_classes)
    first = cfg.first_conv + ".weight"
    in_chans = model.state_dict()[first].shape[1]
    for name in {first, official_key_map(model)[first]}:  # the file may use either naming
        if name in state and state[name].shape[1] != in_chans:
            state[name] = adapt_input_conv(in_chans, state[name])
    state = fit_state_dict(model, state, skip=skip)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith(skip)}, strict=not skip)


def build_model(model_cls: type[nn.Module], variant: str, pretrained=False, **kwargs) -> nn.Module:
    """Build ``variant`` through timm's builder; load weights if asked; wrap it for ``features_only``.

    ``pretrained``: False; True (official weights, downloaded into torch.hub's cache); a file path or URL; or a
    state_dict. timm's ``pretrained_cfg_overlay=dict(file=...)`` also names a local file.
    """
    features_only = kwargs.pop("features_only", False)
    out_indices = kwargs.pop("out_indices", STAGE_INDICES)
    feature_cls = kwargs.pop("feature_cls", "list")
    overlay = kwargs.pop("pretrained_cfg_overlay", None) or {}
    cache_dir = kwargs.pop("cache_dir", None)
    if pretrained and overlay.get("file"):
        pretrained = overlay["file"]
    model = build_model_with_cfg(
        model_cls,
        variant,
        pretrained=False,
        pretrained_cfg=kwargs.pop("pretrained_cfg", None),
        pretrained_cfg_overlay={k: v for k, v in overlay.items() if k != "file"},
        **kwargs,
    )
    if pretrained is not False and pretrained is not None:
        load_pretrained(model, variant, pretrained, None if cache_dir is None else str(cache_dir))
    if features_only:
        model = feature_wrapper(model, out_indices, feature_cls)
    return model
