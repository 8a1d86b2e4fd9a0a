"""One table with every model's pretrained configuration and published figures.

Sources: SCNet's official README and ``scnet.py`` (``model_urls``; the 8 hex digits in each file name are the start
of its SHA-256, checked on download); RedNet's official README (its weights are behind OneDrive share links that a
program cannot download: fetch them by hand and pass the file). Top-1/top-5 are the READMEs' ImageNet validation
figures (SCNet gives errors; converted here to accuracies). Evaluation transforms are the ones both papers use:
resize the short side to 256, centre-crop 224 (crop 0.875), bilinear, ImageNet mean/std.

Licences: both official repositories carry an MIT LICENSE file (SCNet: "Copyright (c) 2020 Jiang-Jiang Liu";
involution: "Copyright (c) 2021 Duo Li"); neither README states any licence or terms for the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_SCNET_PAPER = "Liu et al., Improving Convolutional Networks with Self-Calibrated Convolutions, CVPR 2020"
_REDNET_PAPER = "Li et al., Involution: Inverting the Inherence of Convolution for Visual Recognition, CVPR 2021"
_SCNET_URL = "https://backseason.oss-cn-beijing.aliyuncs.com/scnet/"
_SCNET_REPO = "https://github.com/MCG-NKU/SCNet"
_REDNET_REPO = "https://github.com/d-li14/involution"
_REDNET_README = _REDNET_REPO + "#image-classification-on-imagenet"
_WEIGHTS_TERMS = (
    "no licence of their own: the authors publish them beside their MIT-licensed code and state no other terms; "
    "they were trained on ImageNet-1k, so check its terms of access for your use"
)


@dataclass(frozen=True)
class PretrainedConfig:
    """Where a model's official ImageNet weights are, how to feed the model, and what the paper reports."""

    paper: str
    repository: str  # the official code
    url: str | None  # direct download link, or None where only a manual download exists
    file_name: str  # name of the file in torch.hub's checkpoint cache
    sha256_prefix: str | None  # start of the file's SHA-256, checked after download
    download_page: str  # where a person finds the weights
    paper_top1: float | None
    paper_top5: float | None
    paper_params_m: float | None
    paper_flops: str | None  # as the paper's README states it
    num_classes: int = 1000
    input_size: tuple[int, int, int] = (3, 224, 224)
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    first_conv: str = "conv1"
    classifier: str = "fc"
    license: str = "MIT"  # of the official repository's code (its LICENSE file)
    weights_terms: str = _WEIGHTS_TERMS  # what is known about the terms of the official weights
    released: bool = True  # False where the authors never published weights


def _scnet(
    name: str, sha: str | None, top1_err, top5_err, params_m, flops, first_conv="conv1", released=True
) -> PretrainedConfig:
    file_name = f"{name}-{sha}.pth" if sha else f"{name}.pth"
    return PretrainedConfig(
        paper=_SCNET_PAPER,
        repository=_SCNET_REPO,
        url=_SCNET_URL + file_name if sha else None,
        file_name=file_name,
        sha256_prefix=sha,
        download_page=_SCNET_REPO + "#pretrained-models",
        paper_top1=None if top1_err is None else round(100 - top1_err, 2),
        paper_top5=None if top5_err is None else round(100 - top5_err, 2),
        paper_params_m=params_m,
        paper_flops=flops,
        first_conv=first_conv,
        released=released,
    )


def _rednet(name: str, top1, top5, params_m, gflops) -> PretrainedConfig:
    return PretrainedConfig(
        paper=_REDNET_PAPER,
        repository=_REDNET_REPO,
        url=None,
        file_name=f"{name}.pth",
        sha256_prefix=None,
        download_page=_REDNET_README,
        paper_top1=top1,
        paper_top5=top5,
        paper_params_m=params_m,
        paper_flops=f"{gflops}G FLOPs",
        first_conv="conv1.0.conv",
    )


PRETRAINED: dict[str, PretrainedConfig] = {
    "scnet50": _scnet("scnet50", "dc6a7e87", 22.19, 6.08, 25.56, "4.0G MAdds"),
    "scnet50_v1d": _scnet("scnet50_v1d", "4109d1e1", 19.53, 4.68, 25.58, "4.7G MAdds", first_conv="conv1.0"),
    "scnet101": _scnet("scnet101", "44c5b751", 21.06, 5.75, 44.57, "7.2G MAdds"),
    # The official code defines scnet101_v1d but has released no weights and no figures for it.
    "scnet101_v1d": _scnet("scnet101_v1d", None, None, None, None, None, first_conv="conv1.0", released=False),
    "rednet26": _rednet("rednet26", 75.96, 93.19, 9.23, 1.73),
    "rednet38": _rednet("rednet38", 77.48, 93.57, 12.39, 2.22),
    "rednet50": _rednet("rednet50", 78.35, 94.13, 15.54, 2.71),
    "rednet101": _rednet("rednet101", 78.92, 94.35, 25.65, 4.74),
    "rednet152": _rednet("rednet152", 79.12, 94.38, 33.99, 6.79),
}


def get_pretrained_config(name: str) -> PretrainedConfig:
    """The configuration of model ``name``; a KeyError lists the known names."""
    try:
        return PRETRAINED[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(PRETRAINED)}") from None


def timm_cfg(name: str) -> dict:
    """The configuration in timm's ``pretrained_cfg`` form (so that timm's data config helpers work)."""
    c = get_pretrained_config(name)
    return dict(
        url=c.url or "",
        num_classes=c.num_classes,
        input_size=c.input_size,
        pool_size=(7, 7),
        crop_pct=c.crop_pct,
        interpolation=c.interpolation,
        mean=c.mean,
        std=c.std,
        first_conv=c.first_conv,
        classifier=c.classifier,
        license=c.license,
    )
