import pytest
import torch

from adaptconv.benchmark import Setting
from adaptconv.benchmark.profile import category, kernel_profile


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
    from adaptconv.benchmark.profile import _synchronizing_calls

    x = torch.ones(3, device="cuda")
    sites = _synchronizing_calls(lambda: (x * 2).sum().item())
    assert len(sites) == 1 and "test_profile.py" in sites[0]
    assert _synchronizing_calls(lambda: x * 2) == []
