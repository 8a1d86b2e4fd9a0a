"""A synthetic detection set (filled rectangles and ellipses on noise), small detector settings, a training loop.

Importable as ``detection_data`` (pytest puts tests/detection on sys.path).
"""

from __future__ import annotations

import math

import torch

from adaptconv.detection import fasterrcnn_fpn, keypointrcnn_fpn, maskrcnn_fpn, retinanet_fpn

#: class 1: rectangles, class 2: ellipses (0 is the background, torchvision's convention)
NUM_CLASSES = 3
#: keypoints of every object, clockwise from the top left: a rectangle's corners, an ellipse's extreme points
NUM_KEYPOINTS = 4


def _shape(label: int, box: tuple[int, int, int, int], height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The (H, W) mask and the (4, 3) keypoints (x, y, visibility 2) of a shape filling ``box`` = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    if label == 1:
        mask = (xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    else:
        cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
        mask = ((xs - cx) / a) ** 2 + ((ys - cy) / b) ** 2 <= 1
        points = [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    keypoints = torch.tensor([(x, y, 2.0) for x, y in points])
    return mask, keypoints


def make_shapes(
    n: int, size: int = 64, seed: int = 0, max_objects: int = 2
) -> list[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
    """``n`` images (3, size, size) in [0, 1] of 1 to ``max_objects`` non-overlapping shapes on uniform noise,
    with torchvision's targets: ``boxes`` (exact, in pixels), ``labels``, ``masks`` (uint8) and ``keypoints``.

    Each class has its own hue (rectangles reddish, ellipses bluish) so that a few steps can learn them.
    """
    g = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(n):
        image = torch.rand(3, size, size, generator=g) * 0.4
        boxes, labels, masks, keypoints = [], [], [], []
        for _ in range(int(torch.randint(1, max_objects + 1, (), generator=g))):
            for _attempt in range(20):  # rejection sampling of a box that overlaps no earlier one
                w, h = (int(v) for v in torch.randint(size // 4, size // 2 + 1, (2,), generator=g))
                x0 = int(torch.randint(0, size - w + 1, (), generator=g))
                y0 = int(torch.randint(0, size - h + 1, (), generator=g))
                box = (x0, y0, x0 + w, y0 + h)
                if all(box[2] <= b[0] or b[2] <= box[0] or box[3] <= b[1] or b[3] <= box[1] for b in boxes):
                    break
            else:
                continue
            label = int(torch.randint(1, NUM_CLASSES, (), generator=g))
            mask, points = _shape(label, box, size, size)
            colour = torch.tensor([0.9, 0.3, 0.2] if label == 1 else [0.2, 0.4, 0.9])
            colour = (colour + 0.1 * torch.randn(3, generator=g)).clamp(0, 1)
            image = torch.where(mask, colour[:, None, None], image)
            tight = mask.nonzero()  # the box of the pixels actually filled, exact for both shapes
            boxes.append(
                (int(tight[:, 1].min()), int(tight[:, 0].min()), int(tight[:, 1].max()) + 1, int(tight[:, 0].max()) + 1)
            )
            labels.append(label)
            masks.append(mask)
            keypoints.append(points)
        target = dict(
            boxes=torch.tensor(boxes, dtype=torch.float32),
            labels=torch.tensor(labels),
            masks=torch.stack(masks).to(torch.uint8),
            keypoints=torch.stack(keypoints),
        )
        data.append((image, target))
    return data


def train_losses(model: torch.nn.Module, data: list, steps: int, batch_size: int = 4, lr: float = 0.01) -> list[float]:
    """Train ``model`` for ``steps`` SGD steps on batches cycling through ``data``; the total loss of each step."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    model.train()
    losses = []
    for step in range(steps):
        start = (step * batch_size) % len(data)
        batch = [data[(start + i) % len(data)] for i in range(batch_size)]
        images, targets = [b[0] for b in batch], [b[1] for b in batch]
        loss = sum(model(images, targets).values())
        if not math.isfinite(loss.item()):
            raise AssertionError(f"non-finite loss at step {step}: {loss.item()}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


#: torchvision arguments that keep a detector small and fast: 64 px images, few proposals and sampled RoIs
SMALL = dict(
    min_size=64,
    max_size=64,
    rpn_pre_nms_top_n_train=200,
    rpn_post_nms_top_n_train=100,
    rpn_pre_nms_top_n_test=100,
    rpn_post_nms_top_n_test=50,
    rpn_batch_size_per_image=64,
    box_batch_size_per_image=64,
    box_detections_per_img=20,
)
SMALL_RETINANET = dict(min_size=64, max_size=64, topk_candidates=100, detections_per_img=20)
#: a narrow backbone (stage widths 16-32-64-128, as ``--width 0.25``) and a narrow pyramid
NARROW = dict(out_channels=64, backbone_kwargs=dict(channels=(16, 32, 64, 128)))


BUILDERS = [fasterrcnn_fpn, maskrcnn_fpn, keypointrcnn_fpn, retinanet_fpn]


def builder_id(builder) -> str:
    """The builder's name, as a pytest id."""
    return builder.__name__


def small_kwargs(builder) -> dict:
    """The builder's keyword arguments of a small, fast model of the synthetic set."""
    kwargs = dict(num_classes=NUM_CLASSES, **NARROW)
    kwargs.update(SMALL_RETINANET if builder is retinanet_fpn else SMALL)
    if builder is keypointrcnn_fpn:
        kwargs["num_keypoints"] = NUM_KEYPOINTS
    return kwargs


def shrink_heads(model: torch.nn.Module) -> torch.nn.Module:
    """Replace torchvision's mask and keypoint heads (4 convs of 256 and 8 convs of 512 channels) by two convs
    of 64 channels: the same structure at a fraction of the cost on a CPU."""
    from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    heads = model.roi_heads if hasattr(model, "roi_heads") else None
    channels = model.backbone.out_channels
    if heads is not None and heads.has_mask():
        heads.mask_head = MaskRCNNHeads(channels, (64, 64), 1)
        heads.mask_predictor = MaskRCNNPredictor(64, 64, NUM_CLASSES)
    if heads is not None and heads.has_keypoint():
        heads.keypoint_head = KeypointRCNNHeads(channels, (64, 64))
        heads.keypoint_predictor = KeypointRCNNPredictor(64, NUM_KEYPOINTS)
    return model


def small_model(builder, name: str = "rednet26", **kwargs) -> torch.nn.Module:
    """A small, fast detector of the synthetic set from ``builder`` on backbone ``name``; ``kwargs`` win."""
    return shrink_heads(builder(name, **{**small_kwargs(builder), **kwargs}))
