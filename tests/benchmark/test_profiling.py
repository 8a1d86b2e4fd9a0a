"""benchmarks/profiling.py: kernel categories, the profiles of a harness step on a CPU; profile_roles.py's roles."""

import pytest
import torch

from adaptconv.benchmark import Setting
from benchmarks.profile_roles import role
from benchmarks.profiling import category, kernel_profile, module_profile, synchronizing_calls


@pytest.mark.parametrize(
    "name, expected",
    [("backward_kernel", "involution aggregation"),
     ("void at::native::vectorized_elementwise_kernel<4, at::native::sigmoid_backward_kernel_cuda>", "element-wise"),
     ("sm90_xmma_fprop_implicit_gemm_bf16bf16_bf16f32_f32_nhwckrsc_nhwc", "convolution"),
     ("void at::native::batch_norm_collect_statistics_channels_last_kernel<at::native::Var>", "batch norm"),
     ("void at::native::(anonymous namespace)::avg_pool2d_backward_out_cuda_frame_nhwc", "pooling"),
     ("void at::native::vectorized_elementwise_kernel<8, at::native::CUDAFunctor_add<c10::BFloat16>>", "element-wise"),
     ("void at::native::CatArrayBatchedCopy<float>", "copy / concatenation"),
     ("nvjet_sm90_tst_128x64_64x8_1x2_h_bz_splitK_NTT", "matrix product"),
     ("aten::addmm", "matrix product"),
     ("Memset (Device)", "other")],
)  # fmt: skip
def test_kernel_names_fall_into_categories(name, expected):
    assert category(name) == expected


def test_cpu_profile_of_a_train_step(one_thread):
    prof = kernel_profile(Setting("rednet26", "train", 2, img_size=32), "cpu", steps=2, warmup=1)
    assert prof["host_ms"] > 0 and prof["synchronizations"] == 0
    assert prof["total_ms"] == pytest.approx(sum(c["ms"] for c in prof["categories"]))
    assert prof["kernels"] == sorted(prof["kernels"], key=lambda k: -k["ms"])
    cats = {c["category"] for c in prof["categories"]}
    assert {"involution aggregation", "convolution", "batch norm"} <= cats


@pytest.mark.gpu
def test_synchronizing_calls_are_found_with_their_caller():
    x = torch.ones(3, device="cuda")
    sites = synchronizing_calls(lambda: (x * 2).sum().item())
    assert len(sites) == 1 and "test_profiling.py" in sites[0]
    assert synchronizing_calls(lambda: x * 2) == []


def test_module_profile_charges_forward_and_backward_to_modules(one_thread):
    prof = module_profile(Setting("scnet50", "train", 2, img_size=32), "cpu", steps=1, warmup=1)
    rows = prof["rows"]
    assert prof["total_ms"] == pytest.approx(sum(r["ms"] for r in rows))
    seen = {(r["module"], r["direction"], r["op"]) for r in rows}
    # a conv's forward operator and its backward node, both charged to the conv
    assert ("layer1.0.conv1", "forward", "aten::conv2d") in seen
    assert ("layer1.0.conv1", "backward", "ConvolutionBackward0") in seen
    # the gate's fused op inside the self-calibrated conv, and the optimizer outside every module
    assert any(r["module"] == "layer1.0.scconv" and r["cls"] == "SelfCalibration" for r in rows)
    assert any(r["module"] == "<optimizer>" for r in rows)
    with pytest.raises(ValueError, match="needs mode 'eager'"):
        module_profile(Setting("scnet50", "train", 2, mode="compile", img_size=32), "cpu")


def test_profile_roles_groups_modules_by_role():
    kernel = {"layer1.0.conv1_a": (1, 1), "layer1.0.k1.0": (3, 3)}
    assert role("layer1.0.conv1_a", "Conv2d", "aten::conv2d", kernel) == "1x1 conv"
    assert role("layer1.0.k1.0", "Conv2d", "aten::conv2d", kernel) == "3x3 conv"
    assert role("layer1.0.scconv.k2.1", "Conv2d", "aten::conv2d", kernel).startswith("K2 branch")
    assert role("layer1.0.scconv", "SelfCalibratedConv2d", "aten::sigmoid", kernel).startswith("calibration gate")
    assert role("layer1.0", "SCBottleneck", "aten::cat", kernel) == "concatenation"
    assert role("layer1.0", "SCBottleneck", "aten::add", kernel) == "residual sum"
    assert role("<optimizer>", None, "aten::add_", kernel) == "optimizer"
    assert role("conv1", "Conv2d", "aten::conv2d", kernel) == "stem"
