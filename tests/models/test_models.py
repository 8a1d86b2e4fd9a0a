"""Every registered model through the same tests (timm's style): forward, backward, sizes, timm interface,
features, official equivalence, MACs, export."""

from __future__ import annotations

import json
import warnings

import pytest
import timm
import torch
import torch.nn as nn
from helpers import SHARED, randomize_norms, rel_error
from official_reference import official_forward

import adaptconv
from adaptconv.models.complexity import count_macs, count_params
from adaptconv.models.pretrained import PRETRAINED
from adaptconv.ops import SelfCalibration

MODELS = adaptconv.list_models()
SCNETS = [m for m in MODELS if m.startswith("scnet")]
REDNETS = [m for m in MODELS if m.startswith("rednet")]

# Reference MACs at 224x224 (convs + fc + involution aggregation, no BN), measured on the official code.
REFERENCE_GMACS = {
    "scnet50": 3.925, "scnet50_v1d": 4.685, "scnet101": 7.169, "scnet101_v1d": 9.044, "rednet26": 1.685,
    "rednet38": 2.167, "rednet50": 2.649, "rednet101": 4.659, "rednet152": 6.679,
}  # fmt: skip


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name):
    model = adaptconv.create_model(name, num_classes=10)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([1, 7])).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", MODELS)
def test_any_size_from_32px(name):
    model = adaptconv.create_model(name, num_classes=5).eval()
    for size in [(32, 32), (33, 47), (61, 40)]:
        with torch.no_grad():
            out = model(torch.randn(1, 3, *size))
        assert out.shape == (1, 5) and torch.isfinite(out).all(), size


@pytest.mark.parametrize("name", MODELS)
def test_timm_interface(name):
    model = timm.create_model(name, in_chans=1, num_classes=7).eval()
    x = torch.randn(2, 1, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (2, 2048, 2, 2)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 2048)
    torch.testing.assert_close(model.forward_head(feats), model(x))
    assert isinstance(model.get_classifier(), nn.Linear) and model.num_features == 2048
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)
    model.reset_classifier(0)
    assert model(x).shape == (2, 2048)
    # Default configuration: consistent with the one table and pointing at real modules.
    cfg, table = model.pretrained_cfg, PRETRAINED[name]
    assert cfg["input_size"] == table.input_size and cfg["crop_pct"] == table.crop_pct
    assert tuple(cfg["mean"]) == table.mean and tuple(cfg["std"]) == table.std
    assert isinstance(model.get_submodule(cfg["first_conv"]), nn.Conv2d)
    assert model.get_submodule(cfg["first_conv"]).in_channels == 1
    assert cfg["classifier"] == "fc"
    assert [f["reduction"] for f in model.feature_info] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize("name", MODELS)
def test_features_only(name):
    model = timm.create_model(name, features_only=True).eval()
    assert model.feature_info.channels() == [256, 512, 1024, 2048]
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 96, 64))
    assert [tuple(o.shape) for o in outs] == [
        (1, c, 96 // r, 64 // r) for c, r in zip([256, 512, 1024, 2048], [4, 8, 16, 32], strict=True)
    ]
    subset = adaptconv.create_model(name, features_only=True, out_indices=(2, 4))
    assert subset.feature_info.channels() == [512, 2048]


def _equivalence(name: str, size: tuple[int, int], dtype: torch.dtype) -> float:
    x = torch.randn(2, 3, *size, dtype=dtype)
    model = randomize_norms(adaptconv.create_model(name), x).to(dtype)
    with torch.no_grad():
        ours = model(x)
        official = official_forward(name, adaptconv.official_state_dict(model), x)
    return rel_error(ours, official)


# Smallest sizes where the official code runs: SCNet needs >= 97 px; RedNet needs ceil(H/4), ceil(W/4) % 8 == 0.
@pytest.mark.parametrize("name", MODELS)
def test_official_outputs_small(name):
    size = (97, 113) if name in SCNETS else (64, 96)
    assert _equivalence(name, size, torch.float64) < 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_official_outputs_224(name):
    assert _equivalence(name, (224, 224), torch.float64) < 1e-10


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_and_macs(name):
    with torch.device("meta"):
        model = adaptconv.create_model(name)
    macs = count_macs(model, (224, 224))
    assert round(macs / 1e9, 3) == REFERENCE_GMACS[name]
    if (SHARED / "reference" / "params_flops.json").exists():
        ref = json.loads((SHARED / "reference" / "params_flops.json").read_text())["models"][name]
        assert macs == ref["conv_fc_plus_inv"]
        assert count_params(model) == ref["num_params"]


@pytest.mark.parametrize("name", ["scnet50_v1d", "rednet26"])
def test_channels_last_matches(name):
    x = torch.randn(2, 3, 65, 71, dtype=torch.float64)
    model = randomize_norms(adaptconv.create_model(name), x).double()
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    assert rel_error(out, ref) < 1e-10


def test_export_matches_eager():
    x = torch.randn(2, 3, 64, 64)
    model = randomize_norms(adaptconv.create_model("rednet26", num_classes=10), x)
    exported = torch.export.export(model, (x,))
    assert any("involution_aggregate" in str(n.target) for n in exported.graph.nodes)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))


def test_initialisation_follows_official_code():
    red = adaptconv.create_model("rednet26")
    assert all((b.bn3.weight == 0).all() and (b.bn3.bias == 0).all() for b in red.modules() if hasattr(b, "bn3"))
    assert all((m.bias == 0).all() for m in red.modules() if isinstance(m, nn.Conv2d) and m.bias is not None)
    assert red.fc.weight.std().item() == pytest.approx(0.01, rel=0.1)
    sc = adaptconv.create_model("scnet50")
    assert all((b.bn3.weight == 1).all() for b in sc.modules() if hasattr(b, "bn3"))


def test_registry_and_baselines():
    assert set(MODELS) == set(PRETRAINED) and len(MODELS) == 9
    assert set(MODELS) <= set(timm.list_models())
    assert adaptconv.list_models("rednet*") == REDNETS
    baseline = adaptconv.create_model("resnet50")
    assert type(baseline).__name__ == "ResNet" and count_params(baseline) == 25557032


def test_drop_path_and_unsupported_options():
    model = adaptconv.create_model("rednet26", drop_path_rate=0.1, num_classes=4)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="cardinality"):
        adaptconv.create_model("scnet50", cardinality=2)


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODELS)
def test_cuda_matches_cpu_and_runs_in_bf16(name):
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    model = randomize_norms(adaptconv.create_model(name), x).double()
    with torch.no_grad():
        ref = model(x)
        model = model.cuda().to(memory_format=torch.channels_last)
        out = model(x.cuda().to(memory_format=torch.channels_last))
    assert rel_error(out.cpu(), ref) < 1e-10
    model.float().train()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x.float().cuda().to(memory_format=torch.channels_last)).float().square().mean()
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_training_on_maps_that_leave_batch_norm_two_values_warns():
    # SCNet-101 on 1x1 images at batch 2: every batch norm gets two values a channel, so its input gradient is
    # rounding noise that 231 norms in series amplify (NaN gradients for some seeds); a warning says so.
    model = adaptconv.create_model("scnet101", num_classes=10).train()
    with pytest.warns(UserWarning, match="2 value.s. a channel"):
        model(torch.randn(2, 3, 1, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model(torch.randn(2, 3, 64, 64))  # 2x2 maps at the last stage: 8 values a channel
        model.eval()(torch.randn(1, 3, 1, 1))  # running statistics: nothing degenerates


def test_features_only_scnet_in_training_at_batch_one_says_what_to_do():
    model = timm.create_model("scnet50", features_only=True).train()
    with pytest.raises(ValueError, match="batch of at least 2"):
        model(torch.randn(1, 3, 64, 64))


def test_ablation_options_reach_every_block():
    scnet = adaptconv.create_model("scnet50", pooling_r=2, calibration_pooling="max",
                                   calibration_upsampling="bilinear", calibration_gate_identity=False)  # fmt: skip
    convs = [m for m in scnet.modules() if isinstance(m, SelfCalibration)]
    assert len(convs) == 16
    assert all((c.k2[0].r, c.k2[0].mode, c.upsampling, c.gate_identity) == (2, "max", "bilinear", False) for c in convs)
    rednet = adaptconv.create_model("rednet26", kernel_size=5, group_channels=8, reduction=2)
    blocks = [b.conv2 for stage in (rednet.layer1, rednet.layer2, rednet.layer3, rednet.layer4) for b in stage]
    assert all((b.kernel_size, b.channels // b.groups, b.span.in_channels) == (5, 8, b.channels // 2) for b in blocks)
    assert rednet.conv1[1].kernel_size == 3  # the stem's involution keeps its own kernel size
    for model in (scnet, rednet):
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
