"""Independent, purely functional eval-mode forward pass of the *official* SCNet and RedNet classifiers.

Test helper only: it is written from the architecture facts in ``shared/reference/official-architecture.md``
(beside the repository in CI; official SCNet c0b5bd6, involution 21c3158) and uses nothing but
``torch.nn.functional`` on an official-format state_dict (key names as in the official checkpoints), so the
library's ``nn.Module`` implementation can be checked against it by feeding both the same weights.

It deliberately shares no code with ``adaptconv``. Block counts, strides, downsample placement and avd
placement come from the depth facts; channel counts come from the tensor shapes in the state_dict. Every
key of the state_dict (except ``num_batches_tracked``) must be used exactly as the architecture implies,
otherwise an error is raised, so a key/structure mismatch cannot pass silently.

Public API: :func:`official_forward`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["official_forward", "OFFICIAL_MODELS"]

_BN_EPS = 1e-5

# SCNet factories: depth -> blocks per stage; v1d -> (deep stem + avg_down + avd).
_SCNET = {
    "scnet50": ((3, 4, 6, 3), False),
    "scnet50_v1d": ((3, 4, 6, 3), True),
    "scnet101": ((3, 4, 23, 3), False),
    "scnet101_v1d": ((3, 4, 23, 3), True),
}
# RedNet depths -> blocks per stage (Bottleneck only).
_REDNET = {
    "rednet26": (1, 2, 4, 1),
    "rednet38": (2, 3, 5, 2),
    "rednet50": (3, 4, 6, 3),
    "rednet101": (3, 4, 23, 3),
    "rednet152": (3, 8, 36, 3),
}
OFFICIAL_MODELS = tuple(_SCNET) + tuple(_REDNET)

_STAGE_STRIDES = (1, 2, 2, 2)
_INV_GROUP_CHANNELS = 16  # involution: G = C // 16
_INV_KERNEL = 7  # bottleneck involution kernel size
_INV_STEM_KERNEL = 3  # cls/ RedNet stem involution kernel size (det/seg copies use 7; not modelled here)


class _Params:
    """Fetches state_dict tensors by name, cast to the input's dtype/device; records what was used."""

    def __init__(self, state_dict: dict[str, torch.Tensor], like: torch.Tensor) -> None:
        self._sd = state_dict
        self._dtype = like.dtype
        self._device = like.device
        self._used: set[str] = set()

    def __call__(self, key: str) -> torch.Tensor:
        if key not in self._sd:
            raise KeyError(f"official state_dict is missing {key!r}")
        self._used.add(key)
        return self._sd[key].to(device=self._device, dtype=self._dtype)

    def check_all_used(self) -> None:
        unused = sorted(k for k in self._sd if k not in self._used and not k.endswith("num_batches_tracked"))
        if unused:
            raise ValueError(
                f"{len(unused)} state_dict entries were not used by the official architecture, e.g. {unused[:5]}"
            )


# ----------------------------------------------------------------------------------------------------
# primitives
# ----------------------------------------------------------------------------------------------------


def _bn(p: _Params, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(
        x,
        p(prefix + ".running_mean"),
        p(prefix + ".running_var"),
        p(prefix + ".weight"),
        p(prefix + ".bias"),
        training=False,
        eps=_BN_EPS,
    )


def _conv(p: _Params, key: str, x: torch.Tensor, stride: int = 1, bias_key: str | None = None) -> torch.Tensor:
    """Plain conv, "same" padding (k-1)//2 (3x3 -> 1, 7x7 -> 3, 1x1 -> 0), dilation 1, groups 1."""
    w = p(key)
    b = p(bias_key) if bias_key is not None else None
    return F.conv2d(x, w, b, stride=stride, padding=(w.shape[-1] - 1) // 2)


# ----------------------------------------------------------------------------------------------------
# SCNet
# ----------------------------------------------------------------------------------------------------


def _scconv(p: _Params, prefix: str, x: torch.Tensor, stride: int) -> torch.Tensor:
    """SCConv on x (post-ReLU output of conv1_b/bn1_b).

    k2 = AvgPool2d(4, 4) [floor] -> conv3x3 s1 -> BN; k3 = conv3x3 s1 -> BN; k4 = conv3x3 stride s -> BN.
    out = k4(k3(x) * sigmoid(x + nearest_upsample(k2(x), size=x.shape[2:]))).
    """
    k2 = F.avg_pool2d(x, kernel_size=4, stride=4)  # floor mode, no padding
    k2 = _bn(p, prefix + ".k2.2", _conv(p, prefix + ".k2.1.weight", k2))
    # F.interpolate without a mode: legacy 'nearest' (src = floor(dst * in / out)), as in the official code.
    k2 = F.interpolate(k2, size=x.shape[2:], mode="nearest")
    gate = torch.sigmoid(x + k2)
    k3 = _bn(p, prefix + ".k3.1", _conv(p, prefix + ".k3.0.weight", x))
    out = k3 * gate
    return _bn(p, prefix + ".k4.1", _conv(p, prefix + ".k4.0.weight", out, stride=stride))


def _sc_bottleneck(
    p: _Params, prefix: str, x: torch.Tensor, stride: int, avd: bool, has_downsample: bool, avg_down: bool
) -> torch.Tensor:
    # With avd, the 3x3 convs run at stride 1 and AvgPool2d(3, 2, 1) does the down-sampling after the ReLUs.
    conv_stride = 1 if avd else stride

    a = F.relu(_bn(p, prefix + ".bn1_a", _conv(p, prefix + ".conv1_a.weight", x)))
    b = F.relu(_bn(p, prefix + ".bn1_b", _conv(p, prefix + ".conv1_b.weight", x)))

    a = F.relu(_bn(p, prefix + ".k1.1", _conv(p, prefix + ".k1.0.weight", a, stride=conv_stride)))
    b = F.relu(_scconv(p, prefix + ".scconv", b, conv_stride))

    if avd:
        a = F.avg_pool2d(a, kernel_size=3, stride=stride, padding=1, count_include_pad=True)
        b = F.avg_pool2d(b, kernel_size=3, stride=stride, padding=1, count_include_pad=True)

    out = _bn(p, prefix + ".bn3", _conv(p, prefix + ".conv3.weight", torch.cat([a, b], dim=1)))

    if has_downsample:
        if avg_down:
            # Seq(AvgPool2d(s, s, ceil_mode=True, count_include_pad=False), conv1x1 s1, BN)
            # -> keys downsample.1 (conv) / downsample.2 (BN); built for layer1 too (AvgPool2d(1) = identity)
            r = F.avg_pool2d(x, kernel_size=stride, stride=stride, ceil_mode=True, count_include_pad=False)
            r = _bn(p, prefix + ".downsample.2", _conv(p, prefix + ".downsample.1.weight", r))
        else:
            # Seq(conv1x1 stride s, BN) -> downsample.0 / .1
            r = _bn(p, prefix + ".downsample.1", _conv(p, prefix + ".downsample.0.weight", x, stride=stride))
    else:
        r = x
    return F.relu(out + r)


def _scnet_forward(p: _Params, x: torch.Tensor, layers: tuple[int, ...], v1d: bool) -> torch.Tensor:
    if v1d:
        # deep stem: conv3x3 s2 -> BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3
        # (no BN inside conv1 after conv1.6; the top-level bn1 follows)
        x = F.relu(_bn(p, "conv1.1", _conv(p, "conv1.0.weight", x, stride=2)))
        x = F.relu(_bn(p, "conv1.4", _conv(p, "conv1.3.weight", x)))
        x = _conv(p, "conv1.6.weight", x)
    else:
        x = _conv(p, "conv1.weight", x, stride=2)  # 7x7 s2 p3
    x = F.relu(_bn(p, "bn1", x))
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    for stage, (n_blocks, stage_stride) in enumerate(zip(layers, _STAGE_STRIDES, strict=True), start=1):
        for j in range(n_blocks):
            first = j == 0
            stride = stage_stride if first else 1
            # avd only on the first block of layer2-4 (layer1 is built with is_first=False and stride 1).
            avd = v1d and first and stride > 1
            x = _sc_bottleneck(p, f"layer{stage}.{j}", x, stride=stride, avd=avd, has_downsample=first, avg_down=v1d)

    x = x.mean(dim=(2, 3))
    return F.linear(x, p("fc.weight"), p("fc.bias"))


# ----------------------------------------------------------------------------------------------------
# RedNet
# ----------------------------------------------------------------------------------------------------


def _involution_aggregate(x: torch.Tensor, kernel: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    """y[n,c,h,w] = sum_{i,j} W[n, c//16, i, j, h, w] * x[n, c, h*s+i-p, w*s+j-p], zero padding p = (k-1)//2.

    ``kernel`` is the generator output (N, G*K*K, H', W'), viewed group-major as (N, G, K, K, H', W').
    """
    n, c, h, w = x.shape
    groups = c // _INV_GROUP_CHANNELS
    if groups * _INV_GROUP_CHANNELS != c:
        raise ValueError(f"involution needs channels divisible by {_INV_GROUP_CHANNELS}, got {c}")
    pad = (k - 1) // 2
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    if kernel.shape != (n, groups * k * k, ho, wo):
        # The official naive code fails here too (view mismatch), e.g. odd H/W at a stride-2 involution.
        raise ValueError(
            f"involution kernel map {tuple(kernel.shape)} does not match unfold output "
            f"{(n, groups * k * k, ho, wo)} for input {tuple(x.shape)}, k={k}, stride={stride}"
        )
    # F.unfold channel order: c * K*K + i*K + j
    cols = F.unfold(x, kernel_size=k, padding=pad, stride=stride)  # (N, C*K*K, Ho*Wo)
    cols = cols.view(n, groups, _INV_GROUP_CHANNELS, k * k, ho, wo)
    wgt = kernel.reshape(n, groups, 1, k * k, ho, wo)  # group-major: channel index = g*K*K + i*K + j
    return (cols * wgt).sum(dim=3).reshape(n, c, ho, wo)


def _involution(p: _Params, prefix: str, x: torch.Tensor, k: int, stride: int) -> torch.Tensor:
    # Kernel generation on AvgPool2d(s, s)(x) when s > 1;
    # conv1 = 1x1 (no bias) + BN + ReLU; conv2 = 1x1 with bias, no norm/act.
    t = F.avg_pool2d(x, kernel_size=stride, stride=stride) if stride > 1 else x
    t = F.relu(_bn(p, prefix + ".conv1.bn", _conv(p, prefix + ".conv1.conv.weight", t)))
    kernel = _conv(p, prefix + ".conv2.conv.weight", t, bias_key=prefix + ".conv2.conv.bias")
    expected = (x.shape[1] // _INV_GROUP_CHANNELS) * k * k
    if kernel.shape[1] != expected:
        raise ValueError(f"{prefix}: kernel generator gives {kernel.shape[1]} channels, expected {expected} (k={k})")
    return _involution_aggregate(x, kernel, k, stride)


def _red_bottleneck(p: _Params, prefix: str, x: torch.Tensor, stride: int, has_downsample: bool) -> torch.Tensor:
    # style 'pytorch': conv1 1x1 stride 1; the involution carries the stride.
    out = F.relu(_bn(p, prefix + ".bn1", _conv(p, prefix + ".conv1.weight", x)))
    out = _involution(p, prefix + ".conv2", out, _INV_KERNEL, stride)
    out = F.relu(_bn(p, prefix + ".bn2", out))
    out = _bn(p, prefix + ".bn3", _conv(p, prefix + ".conv3.weight", out))
    if has_downsample:
        r = _bn(p, prefix + ".downsample.1", _conv(p, prefix + ".downsample.0.weight", x, stride=stride))
    else:
        r = x
    return F.relu(out + r)


def _rednet_forward(p: _Params, x: torch.Tensor, layers: tuple[int, ...]) -> torch.Tensor:
    s = "backbone.stem"
    x = F.relu(_bn(p, s + ".0.bn", _conv(p, s + ".0.conv.weight", x, stride=2)))  # 3->32, 3x3 s2 p1
    x = _involution(p, s + ".1", x, _INV_STEM_KERNEL, 1)
    x = F.relu(_bn(p, s + ".2", x))
    x = F.relu(_bn(p, s + ".4.bn", _conv(p, s + ".4.conv.weight", x)))  # 32->64, 3x3 s1 p1
    x = F.max_pool2d(x, kernel_size=3, stride=2, padding=1)

    for stage, (n_blocks, stage_stride) in enumerate(zip(layers, _STAGE_STRIDES, strict=True), start=1):
        for j in range(n_blocks):
            first = j == 0
            x = _red_bottleneck(
                p, f"backbone.layer{stage}.{j}", x, stride=stage_stride if first else 1, has_downsample=first
            )

    x = x.mean(dim=(2, 3))  # neck: GlobalAveragePooling
    return F.linear(x, p("head.fc.weight"), p("head.fc.bias"))


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------


@torch.no_grad()
def official_forward(model_name: str, state_dict: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Eval-mode logits of the official model `model_name` (one of the 9 names above) for input x (N,3,H,W).

    Weights are cast to ``x``'s dtype and device; the computation runs in ``x.dtype`` under
    ``torch.no_grad()``. Raises ``KeyError`` for a missing state_dict entry, ``ValueError`` for unused
    entries or for RedNet input sizes the official naive code rejects; SCNet at <= 96 px raises
    ``RuntimeError`` from avg_pool2d, as the official code does.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"x must be (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point, got {x.dtype}")
    p = _Params(state_dict, x)
    if model_name in _SCNET:
        layers, v1d = _SCNET[model_name]
        out = _scnet_forward(p, x, layers, v1d)
    elif model_name in _REDNET:
        out = _rednet_forward(p, x, _REDNET[model_name])
    else:
        raise ValueError(f"unknown official model {model_name!r}; expected one of {OFFICIAL_MODELS}")
    p.check_all_used()
    return out
