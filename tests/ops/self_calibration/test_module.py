"""SelfCalibratedConv2d against the paper's formula with the official pooling and up-sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import DEVICES

from adaptconv.ops import CalibrationPool, SelfCalibratedConv2d


def official_scconv(m: SelfCalibratedConv2d, x: torch.Tensor, r: int = 4) -> torch.Tensor:
    """K4(K3(x) * sigmoid(x + Up(K2(AvgPool_r(x))))): floor r x r pool, PyTorch 'nearest' up-sampling."""
    k2 = m.k2[2](m.k2[1](F.avg_pool2d(x, r, r)))
    gate = torch.sigmoid(x + F.interpolate(k2, size=x.shape[2:]))
    return m.k4(m.k3(x) * gate)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("size", "stride", "dilation"), [((8, 8), 1, 1), ((13, 9), 2, 1), ((31, 17), 1, 2), ((4, 5), 2, 1)]
)
def test_official_semantics(device, size, stride, dilation):
    m = SelfCalibratedConv2d(8, stride=stride, padding=dilation, dilation=dilation).to(device).eval()
    x = torch.randn(2, 8, *size, device=device)
    torch.testing.assert_close(m(x), official_scconv(m, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size", [(1, 1), (3, 3), (2, 7), (3, 9)])
def test_maps_smaller_than_r(size):
    m = SelfCalibratedConv2d(8).eval()
    x = torch.randn(2, 8, *size)
    out = m(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    # Along an axis shorter than r the pool is a global average over that axis.
    kh, kw = min(4, size[0]), min(4, size[1])
    k2 = m.k2[2](m.k2[1](F.avg_pool2d(x, (kh, kw), (kh, kw))))
    ref = m.k4(m.k3(x) * torch.sigmoid(x + F.interpolate(k2, size=size)))
    torch.testing.assert_close(out, ref)


def test_different_output_channels_keeps_official_case():
    torch.manual_seed(1)
    square = SelfCalibratedConv2d(8)
    torch.manual_seed(1)
    same = SelfCalibratedConv2d(8, out_channels=8)
    assert [k for k in square.state_dict()] == [k for k in same.state_dict()]
    wide = SelfCalibratedConv2d(8, out_channels=24, stride=2).eval()
    x = torch.randn(2, 8, 12, 10)
    out = wide(x)
    assert out.shape == (2, 24, 6, 5)
    torch.testing.assert_close(out, official_scconv(wide, x))
    assert wide.k2[1].weight.shape == (8, 8, 3, 3) and wide.k4[0].weight.shape == (24, 8, 3, 3)


def test_channels_last_and_backward():
    m = SelfCalibratedConv2d(16, stride=2)
    x = torch.randn(2, 16, 11, 9, requires_grad=True)
    out = m(x)
    out_cl = m.to(memory_format=torch.channels_last)(x.detach().to(memory_format=torch.channels_last))
    torch.testing.assert_close(out_cl, out, rtol=1e-5, atol=1e-5)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in m.parameters())


@pytest.mark.parametrize(
    ("build", "x", "error", "match"),
    [
        (
            dict(in_channels=8),
            torch.randn(1, 4, 8, 8),
            ValueError,
            "has 4 channels but this layer was built for 8",
        ),
        (dict(in_channels=8), torch.randn(8, 8, 8), ValueError, "4-D"),
        (dict(in_channels=8), torch.ones(1, 8, 8, 8, dtype=torch.int32), TypeError, "float"),
        (dict(in_channels=8, groups=3), None, ValueError, "multiples of groups"),
        (dict(in_channels=8, pooling_r=0), None, ValueError, "pooling_r"),
        (dict(in_channels=8, padding=0), None, ValueError, "padding .0. must equal dilation .1."),
        (dict(in_channels=8, padding=1, dilation=2), None, ValueError, "padding .1. must equal dilation .2."),
        (dict(in_channels=8, stride=0), None, ValueError, "stride must be an integer >= 1"),
        (dict(in_channels=8, dilation=0, padding=0), None, ValueError, "dilation must be an integer >= 1"),
        (dict(in_channels=8, padding=-1), None, ValueError, "padding must be an integer >= 0"),
        (dict(in_channels=8), torch.randn(1, 8, 0, 5), ValueError, "empty spatial size"),
    ],
)
def test_bad_input_is_explained(build, x, error, match):
    with pytest.raises(error, match=match):
        SelfCalibratedConv2d(**build)(x)


def test_dilated_conv_keeps_the_input_size():
    m = SelfCalibratedConv2d(8, padding=2, dilation=2)
    assert m(torch.randn(2, 8, 9, 7)).shape == (2, 8, 9, 7)


def test_calibration_pool_refuses_integer_maps():
    with pytest.raises(TypeError, match="floating-point"):
        CalibrationPool(4)(torch.ones(1, 2, 8, 8, dtype=torch.long))


@pytest.mark.parametrize("size", [1, 4, 7])
def test_training_batch_of_one_on_a_map_pooled_to_one_pixel_is_explained(size):
    m = SelfCalibratedConv2d(8).train()
    with pytest.raises(ValueError, match="batch of at least 2"):
        m(torch.randn(1, 8, size, size))
    m(torch.randn(2, 8, size, size))  # a second sample, or evaluation, is fine
    m.eval()(torch.randn(1, 8, size, size))
    m.train()(torch.randn(1, 8, 8, 8))  # pooled to 2x2


@pytest.mark.parametrize(
    "options",
    [dict(pooling="max"), dict(upsampling="bilinear"), dict(gate_identity=False),
     dict(pooling="max", upsampling="bilinear", gate_identity=False, pooling_r=2)],
)  # fmt: skip
def test_ablations_compute_their_formula(options):
    m = SelfCalibratedConv2d(8, **options).double().eval()
    x = torch.randn(2, 8, 13, 10, dtype=torch.float64)
    r = options.get("pooling_r", 4)
    pool = F.max_pool2d if options.get("pooling") == "max" else F.avg_pool2d
    y = m.k2[2](m.k2[1](pool(x, r, r)))
    mode = options.get("upsampling", "nearest")
    up = F.interpolate(y, size=x.shape[-2:], mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
    gate = torch.sigmoid(x + up if options.get("gate_identity", True) else up)
    torch.testing.assert_close(m(x), m.k4(m.k3(x) * gate), rtol=1e-12, atol=1e-12)


def test_ablation_choices_are_checked():
    with pytest.raises(ValueError, match="pooling must be one of"):
        SelfCalibratedConv2d(8, pooling="median")
    with pytest.raises(ValueError, match="upsampling must be one of"):
        SelfCalibratedConv2d(8, upsampling="bicubic")


@pytest.mark.parametrize("size, pooled", [((56, 56), (14, 14)), ((14, 14), (3, 3)), ((7, 9), (1, 2)), ((12, 6), (4, 3)),
                                          ((5, 8), (1, 1)), ((16, 16), (2, 4))])  # fmt: skip
@pytest.mark.parametrize("target", ["x", "slice", "new"])
@pytest.mark.parametrize("batch", [1, 2])  # a channel slice of a batch of one is contiguous: the CPU's own path
def test_add_upsampled_is_x_plus_nearest_upsampling(size, pooled, target, batch):
    from adaptconv.ops.self_calibration.reference import add_upsampled

    whole = torch.randn(batch, 6, *size, dtype=torch.float64)
    x = whole[:, 3:]  # a channel slice, as SCNet's block gives it
    y = torch.randn(batch, 3, *pooled, dtype=torch.float64)
    expected = x + F.interpolate(y, size=size, mode="nearest")
    out = {"x": x, "slice": whole[:, :3], "new": torch.empty_like(x)}[target]
    assert add_upsampled(x, y, out) is out
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_calibration_written_into_a_given_tensor():
    m = SelfCalibratedConv2d(4).eval()
    for fused in (True, False):
        m.fused = fused
        whole = torch.randn(2, 8, 12, 12, dtype=torch.float64)
        m.double()
        x = whole[:, 4:]
        expected = m.calibrated(x.clone())
        with torch.no_grad():
            assert m.calibrated(x, out=x) is x
        torch.testing.assert_close(whole[:, 4:], expected, rtol=1e-14, atol=1e-14)
