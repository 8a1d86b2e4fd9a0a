"""benchmarks/involution_configs.py and the layer shapes the benchmark scripts share (the timing itself needs a GPU)."""

import sys
from pathlib import Path

import pytest
import torch

from adaptconv.ops import involution_triton

pytestmark = pytest.mark.skipif(not involution_triton.AVAILABLE, reason="triton is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


def test_config_option_is_parsed_into_a_triton_config():
    from involution_configs import _parse_config

    config = _parse_config("BLOCK_P=128,DEFER_TAP_SUM=False,warps=8")
    assert config.kwargs == {"BLOCK_P": 128, "DEFER_TAP_SUM": False} and config.num_warps == 8
    assert _parse_config("BLOCK_H=4,BLOCK_W=16").num_warps == 4  # Triton's default when warps is not given


@pytest.mark.parametrize("layer, out_hw", [("layer1", 56), ("layer2.0", 28), ("stem", 112)])
def test_layer_case_shapes_and_layout(layer, out_hw):
    from involution_op import GROUP_CHANNELS, LAYERS, layer_case

    c, h, k, s = LAYERS[layer]
    x, w, gy, conf = layer_case(layer, 2, torch.float32, "channels_last", "cpu")
    assert conf == (k, s, (k - 1) // 2, 1)
    assert x.shape == (2, c, h, h) and gy.shape == (2, c, out_hw, out_hw)
    assert w.shape == (2, c // GROUP_CHANNELS * k * k, out_hw, out_hw)
    assert all(t.is_contiguous(memory_format=torch.channels_last) for t in (x, w, gy))


def test_timed_configurations_follow_layout_family_and_given_list():
    from involution_configs import _parse_config, timed_configs

    from adaptconv.ops import _involution_kernels, _involution_kernels_band, _involution_kernels_nhwc

    assert timed_configs("channels_last", None, None) == _involution_kernels_nhwc.GPU_CONFIGS
    assert timed_configs("contiguous", None, None) == _involution_kernels.GPU_CONFIGS
    assert timed_configs("channels_last", "band", None) == _involution_kernels_band.GPU_CONFIGS
    given = [_parse_config("BLOCK_M=16,BLOCK_K=32,GATHER_B=True,warps=4")]
    assert timed_configs("channels_last", "pixel", given) == given
    # what the launchers then run: the family named by the keys
    x = torch.empty(1, 16, 5, 5).contiguous(memory_format=torch.channels_last).bfloat16()
    w = torch.empty(1, 9, 5, 5).contiguous(memory_format=torch.channels_last).bfloat16()
    families = {involution_triton._family(x, w, 3, 1, 1, c, None) for c in _involution_kernels_band.GPU_CONFIGS}
    assert families == {"band"}
