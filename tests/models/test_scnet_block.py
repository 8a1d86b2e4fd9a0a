"""SCNet's bottleneck in merged layers (``SCBottleneck``) against the official code's layers (``OfficialSCBottleneck``):
the same function in float64 (training and inference, batch norm's running statistics, gradients), the same
state_dict (official names, shapes and order, in and out)."""

from __future__ import annotations

import copy

import pytest
import timm
import torch
import torch.nn as nn

import adaptconv
from adaptconv.models import OfficialSCBottleneck, SCBottleneck

#: (inplanes, planes, stride, avd, dilation, downsample): a stride-1 block, a strided block (K1 and K4 carry the
#: stride), a strided avd block (both at stride 1, then the pool), a dilated block (output stride 16 or 8)
BLOCKS = {
    "stride1": (64, 16, 1, False, 1, False),
    "strided": (32, 16, 2, False, 1, True),
    "avd": (32, 16, 2, True, 1, True),
    "dilated": (64, 16, 1, False, 2, False),
}


def _pair(inplanes, planes, stride, avd, dilation, downsample, **kwargs):
    """A merged block and an official-layers block with the same weights (random, batch norms not the identity)."""
    torch.manual_seed(0)
    down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
    args = dict(inplanes=inplanes, planes=planes, stride=stride, avd=avd, dilation=dilation, **kwargs)
    official = OfficialSCBottleneck(downsample=down if downsample else None, **args).double()
    merged = SCBottleneck(downsample=copy.deepcopy(down) if downsample else None, **args).double()
    with torch.no_grad():
        for m in official.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t, lo in ((m.weight, 0.5), (m.bias, -0.5), (m.running_mean, -0.5), (m.running_var, 0.5)):
                    t.copy_(torch.rand_like(t) + lo)
    merged.load_state_dict(official.state_dict())
    return merged, official


def _gradients(block: nn.Module) -> dict[str, torch.Tensor]:
    """The block's parameter gradients under its state_dict's names (official ones for both forms), through a copy
    whose parameters hold them."""
    ghost = copy.deepcopy(block)
    with torch.no_grad():
        for p, q in zip(ghost.parameters(), block.parameters(), strict=True):
            p.copy_(q.grad)
    stats = ("running_mean", "running_var", "num_batches_tracked")
    return {k: v for k, v in ghost.state_dict().items() if not k.endswith(stats)}


@pytest.mark.parametrize(("recompute", "layout"), [(False, "nchw"), (True, "nchw"), (True, "channels_last")],
                         ids=["plain", "recompute", "recompute-channels_last"])  # fmt: skip
@pytest.mark.parametrize("block", list(BLOCKS))
def test_merged_block_trains_like_the_official_layers(block, recompute, layout):
    merged, official = _pair(*BLOCKS[block])
    merged.recompute_calibration = recompute  # the calibration computed again in the backward pass
    x = torch.randn(3, BLOCKS[block][0], 17, 22, dtype=torch.float64)
    if layout == "channels_last":
        x, merged = x.to(memory_format=torch.channels_last), merged.to(memory_format=torch.channels_last)
    outs, grads = [], []
    for m in (merged, official):
        m.train()
        xi = x.clone().requires_grad_(True)
        y = m(xi)
        y.backward(torch.cos(torch.arange(y.numel(), dtype=torch.float64)).view_as(y))
        outs.append(y.detach())
        grads.append((xi.grad, _gradients(m)))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-10, atol=1e-12)
    assert grads[0][1].keys() == grads[1][1].keys()
    for k in grads[1][1]:
        torch.testing.assert_close(grads[0][1][k], grads[1][1][k], rtol=1e-10, atol=1e-12, msg=k)
    # batch norm's running statistics and counters, updated by the step
    a, b = merged.state_dict(), official.state_dict()
    assert list(a) == list(b)
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-12, atol=1e-12, msg=k)
    assert int(a[next(k for k in a if k.endswith("bn1_b.num_batches_tracked"))]) == 1


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("block", list(BLOCKS))
def test_merged_block_infers_like_the_official_layers(block, grad):
    merged, official = _pair(*BLOCKS[block])
    x = torch.randn(2, BLOCKS[block][0], 19, 16, dtype=torch.float64)
    merged.eval(), official.eval()
    with torch.set_grad_enabled(grad):
        expected = official(x)
        for _ in range(2):  # the in-place writes leave nothing behind for the next call
            torch.testing.assert_close(merged(x), expected, rtol=1e-12, atol=1e-12)
        cl = x.to(memory_format=torch.channels_last)
        torch.testing.assert_close(merged.to(memory_format=torch.channels_last)(cl), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [dict(fused_calibration=False), dict(upsampling="bilinear"), dict(gate_identity=False), dict(pooling="max")],
    ids=lambda o: next(iter(o)),
)
def test_ablations_are_the_same_in_both_forms(options):
    merged, official = _pair(*BLOCKS["stride1"], **options)
    x = torch.randn(2, 64, 13, 14, dtype=torch.float64)
    merged.eval(), official.eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(x), official(x), rtol=1e-12, atol=1e-12)


def test_a_hook_on_the_calibration_sees_its_input_unchanged():
    merged, _ = _pair(*BLOCKS["stride1"])
    merged.eval()
    seen = []
    merged.scconv.register_forward_pre_hook(lambda _m, args: seen.append((args[0], args[0].clone())))
    with torch.no_grad():
        merged(torch.randn(2, 64, 12, 12, dtype=torch.float64))
    kept, copy_ = seen[0]
    torch.testing.assert_close(kept, copy_, rtol=0, atol=0)


def test_state_dict_has_the_official_keys_shapes_and_order():
    merged, official = _pair(*BLOCKS["avd"])
    ours, theirs = merged.state_dict(), official.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in theirs)
    assert "conv1.weight" not in ours and "layer" not in "".join(ours)
    # keys with a prefix, as in a whole model
    model = adaptconv.create_model("scnet50", num_classes=10)
    reference = adaptconv.create_model("scnet50", num_classes=10, official_layers=True)
    assert list(model.state_dict()) == list(reference.state_dict())
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }


def test_state_dict_entries_are_views_of_the_merged_parameters():
    """As for any module, writing into its state_dict's tensors writes the model (e.g. an exponential moving
    average kept with ``state_dict().values()``)."""
    merged, _ = _pair(*BLOCKS["stride1"])
    state = merged.state_dict()
    state["conv1_b.weight"].fill_(3.0)
    state["scconv.k4.1.running_mean"].fill_(-2.0)
    half = merged.half
    assert (merged.conv1.weight[half:] == 3).all() and not (merged.conv1.weight[:half] == 3).any()
    assert (merged.bn2.running_mean[half:] == -2).all() and not (merged.bn2.running_mean[:half] == -2).any()


def test_loading_a_state_dict_with_a_part_missing_names_it():
    merged, official = _pair(*BLOCKS["stride1"])
    state = official.state_dict()
    del state["conv1_b.weight"]
    with pytest.raises(RuntimeError, match="conv1_a.weight"):  # left unmerged: reported as unexpected
        merged.load_state_dict(state)
    result = merged.load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv1.weight"] and result.unexpected_keys == ["conv1_a.weight"]


def test_recomputation_keeps_only_k4s_input_beyond_a_resnet_bottleneck():
    from benchmarks.saved_memory import saved_bytes_per_image  # the repository's benchmarks/, not the package

    kwargs = dict(num_classes=10, layers=(1, 1, 1, 1))
    plain, recomputed = (adaptconv.models.SCNet(recompute_calibration=r, **kwargs) for r in (False, True))
    resnet = timm.create_model("resnet50", num_classes=10, layers=(1, 1, 1, 1))
    saved = [saved_bytes_per_image(m, (3, 64, 64), 2) for m in (resnet, plain, recomputed)]
    assert saved[2] < saved[1]
    # per block, K4's input: half the width at the 3x3 stage's input size (64 px in: 16 px at layer1 and layer2's
    # input, then 8 and 4), float32
    extra = sum(c * side * side * 4 for c, side in ((32, 16), (64, 16), (128, 8), (256, 4)))
    assert saved[2] - saved[0] == extra, (saved, extra)


def test_recomputation_needs_the_merged_layers():
    with pytest.raises(ValueError, match="recompute_calibration=True needs SCNet's merged layers"):
        adaptconv.models.SCNet(layers=(1, 1, 1, 1), official_layers=True, recompute_calibration=True)


def test_group_norm_is_refused():
    with pytest.raises(ValueError, match="each channel on its own"):
        SCBottleneck(32, 16, norm_layer=nn.GroupNorm)


@pytest.mark.gpu
@pytest.mark.usefixtures("no_tf32")
@pytest.mark.parametrize("block", ["stride1", "avd"])
def test_merged_block_on_cuda_with_the_kernels(block):
    """On CUDA channels_last float32 maps large enough for the calibration kernels (2^20 elements a half), both
    forms in training (outputs, input gradients, running statistics) and in inference (the in-place path)."""
    merged, official = (m.float().cuda().to(memory_format=torch.channels_last) for m in _pair(*BLOCKS[block]))
    x = torch.randn(8, BLOCKS[block][0], 64, 64, device="cuda").to(memory_format=torch.channels_last)
    results = []
    for m in (merged, official):
        xi = x.clone().requires_grad_(True)
        y = m.train()(xi)
        y.float().square().mean().backward()
        with torch.no_grad():
            results.append((y.detach(), xi.grad, m.eval()(x), m.state_dict()))
    (ya, ga, ea, sa), (yb, gb, eb, sb) = results
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ga, gb, rtol=1e-3, atol=1e-7)
    torch.testing.assert_close(ea, eb, rtol=1e-4, atol=1e-5)
    for k in sb:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-4, atol=1e-5, msg=k)
