"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017) of an adaptconv model, through the ``grad-cam`` package, and its picture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ._drawing import overlay, pyplot, save, show_image
from .classes import ClassScore, class_name, top_classes
from .errors import VisualizeError
from .images import ModelInput

__all__ = ["GradCamResult", "draw_grad_cam", "grad_cam", "grad_cam_layer"]


def _grad_cam_package():
    try:
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as e:
        # grad-cam imports OpenCV; the non-headless opencv-python needs libGL, which servers often lack
        hint = " (OpenCV needs libGL: use opencv-python-headless instead of opencv-python)" if "libGL" in str(e) else ""
        raise ImportError(f"Grad-CAM needs the grad-cam package: pip install 'adaptconv[visualize]'{hint}: {e}") from e
    return GradCAM, ClassifierOutputTarget


@dataclass(frozen=True)
class GradCamResult:
    """``cam`` (H, W) in [0, 1] at the input's size for class ``target``; ``top5`` the model's best classes;
    ``layer`` the module whose activations and gradients make the map."""

    cam: np.ndarray
    target: ClassScore
    top5: list[ClassScore]
    layer: str


def grad_cam_layer(model: nn.Module) -> tuple[str, nn.Module]:
    """The last block of the last stage (stride 32): the usual Grad-CAM layer of a ResNet-like network."""
    stage = getattr(model, "layer4", None)
    if not isinstance(stage, nn.Sequential) or len(stage) == 0:
        raise VisualizeError(f"{type(model).__name__} has no layer4 stage to take Grad-CAM from")
    return f"layer4.{len(stage) - 1}", stage[-1]


def grad_cam(model: nn.Module, image: ModelInput, class_index: int | None = None) -> GradCamResult:
    """Grad-CAM of ``model`` (eval mode) on ``image`` for ``class_index`` (default: the top-1 class)."""
    GradCAM, ClassifierOutputTarget = _grad_cam_package()
    with torch.no_grad():
        logits = model(image.tensor)[0]
    top5 = top_classes(logits, 5)
    if class_index is None:
        target = top5[0]
    elif not 0 <= class_index < logits.numel():
        raise VisualizeError(f"class {class_index} does not exist: the model has {logits.numel()} classes")
    else:
        p = float(torch.softmax(logits.float(), 0)[class_index])
        target = ClassScore(class_index, class_name(class_index, logits.numel()), p)
    name, layer = grad_cam_layer(model)
    with GradCAM(model=model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=image.tensor, targets=[ClassifierOutputTarget(target.index)])[0]
    return GradCamResult(cam=heat, target=target, top5=top5, layer=name)


def draw_grad_cam(result: GradCamResult, image: ModelInput, title: str, path: str | Path) -> Path:
    """Picture: the image, the Grad-CAM map over it, and the top-5 classes with their probabilities."""
    plt = pyplot()
    h, w = image.size
    panel_w = 3.6
    fig = plt.figure(figsize=(3 * panel_w + 1.6, panel_w * h / w + 1.2), layout="constrained")
    pictures, chart = fig.subfigures(1, 2, width_ratios=(2 * panel_w + 0.8, panel_w + 0.8))
    axes = pictures.subplots(1, 2)
    show_image(axes[0], image.rgb, f"input ({w}x{h})")
    flat = float(result.cam.max() - result.cam.min()) < 1e-6
    im = overlay(axes[1], image.rgb, result.cam, cmap="jet", vmin=0, vmax=1, alpha=0.5)
    axes[1].set_title(
        f"Grad-CAM at {result.layer} for '{_short(result.target.name)}'" + (" (zero everywhere)" if flat else ""),
        fontsize=9,
    )
    # one colour bar for both panels keeps them the same size
    pictures.colorbar(im, ax=list(axes), shrink=0.8, label="Grad-CAM (scaled to [0, 1])")
    ax = chart.subplots()
    names = [f"{_short(c.name)} ({c.index})" for c in result.top5]
    probs = [100 * c.probability for c in result.top5]
    bars = ax.barh(range(len(names))[::-1], probs, color="tab:blue")
    ax.set_yticks(range(len(names))[::-1], names, fontsize=8)
    ax.bar_label(bars, [f"{p:.1f}%" for p in probs], fontsize=8, padding=2)
    ax.set_xlim(0, max(probs) * 1.3)
    ax.set_xlabel("probability (%)")
    ax.set_title("top-5 classes", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)


def _short(name: str, length: int = 30) -> str:
    """A class description cut to fit a title or a bar's label."""
    return name if len(name) <= length else name[: length - 1] + "…"
