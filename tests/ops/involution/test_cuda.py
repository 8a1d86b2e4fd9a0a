"""The CUDA implementation (Triton kernels) of the involution's ops against the float64 unfold formulation of Eq. 4.

On CPU the kernels run in Triton's interpreter. ``triton.jit`` reads TRITON_INTERPRET when a kernel is decorated,
i.e. when adaptconv is imported, which this process has done long before; so the interpreted kernels run in one
spawned worker process that starts with the variable set, and the comparisons are made here. On CUDA (tests
marked gpu) the real kernels run through the custom op, as models and torch.compile use them.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import always_true, arrange, call_patched, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st
from torch._subclasses.fake_tensor import FakeTensorMode

from adaptconv.ops import Involution2d, involution_aggregate, involution_fused, involution_output_size
from adaptconv.ops import involution_aggregate_unfold as unfold_reference
from adaptconv.ops.common import TRITON_INSTALLED

pytestmark = pytest.mark.skipif(not TRITON_INSTALLED, reason="triton is not installed")
CUDA = "adaptconv.ops.involution.cuda"

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}


@pytest.fixture(autouse=True)
def _triton_kernels_only(monkeypatch):
    """These tests are the Triton kernels': the CUDA C++ forward, which takes dense channels_last calls by default,
    is switched off (its tests: test_nvrtc_channels_last.py; the models' GPU tests run the default)."""
    monkeypatch.setenv("ADAPTCONV_NVRTC", "0")


LAYOUTS = ["contiguous", "channels_last", "strided"]


def make_case(n, groups, group_channels, h, w, k, s, p, d, dtype, layouts=("contiguous",) * 3, device="cpu"):
    """x, weight and grad_y in the given dtype and layouts (x, weight, grad_y)."""
    ho, wo = involution_output_size(h, w, k, s, p, d)
    x = torch.randn(n, groups * group_channels, h, w, device=device).to(dtype)
    weight = torch.randn(n, groups * k * k, ho, wo, device=device).to(dtype)
    grad = torch.randn(n, groups * group_channels, ho, wo, device=device).to(dtype)
    return tuple(arrange(t, layout) for t, layout in zip((x, weight, grad), layouts, strict=True))


def expected_layouts(x, weight, grad, conf):
    """(shape, stride, dtype) of y, grad_x, grad_weight as the fake implementations promise them."""
    ops = torch.ops.adaptconv
    with FakeTensorMode() as mode:
        fx, fw, fg = (mode.from_tensor(t) for t in (x, weight, grad))
        outs = [ops.involution_aggregate(fx, fw, *conf), *ops.involution_aggregate_backward(fg, fx, fw, *conf)]
    return [(t.shape, t.stride(), t.dtype) for t in outs]


def check_against_reference(outputs, x, weight, grad, conf):
    """The kernels' y, grad_x, grad_weight against float64 unfold + autograd on the same (rounded) inputs.

    Also their shapes, strides and dtypes against the fake implementations' for these inputs.
    """
    xr, wr = x.detach().double().requires_grad_(True), weight.detach().double().requires_grad_(True)
    ref = unfold_reference(xr, wr, *conf)
    refs = [ref, *torch.autograd.grad(ref, (xr, wr), grad.double())]
    tol = TOLERANCE[x.dtype]
    for name, out, r, layout in zip(("y", "grad_x", "grad_w"), outputs, refs, expected_layouts(x, weight, grad, conf),
                                    strict=True):  # fmt: skip
        assert (out.shape, out.stride(), out.dtype) == layout, name
        assert rel_error(out, r) <= tol, name


def launchers():
    from adaptconv.ops.involution import cuda

    return cuda.aggregate_triton, cuda.aggregate_backward_triton


def run_interpreted(pool, x, weight, grad, conf, patches=None):
    """y, grad_x, grad_weight from the kernels in the interpreter worker, with ``patches`` (see ``call_patched``)."""
    forward, backward = launchers()
    y = pool.submit(call_patched, patches or {}, forward, x, weight, *conf)
    grads = pool.submit(call_patched, patches or {}, backward, grad, x, weight, *conf)
    return [y.result(), *grads.result()]


# (N, G, channels per group, H, W, K, stride, padding or None for 'same', dilation)
CASES = {
    "k3-odd": (2, 2, 16, 9, 11, 3, 1, None, 1),
    "k5-stride2": (1, 1, 16, 9, 7, 5, 2, None, 1),
    "k7-stride2": (1, 1, 16, 11, 9, 7, 2, None, 1),
    "k7-dilation2": (1, 1, 4, 10, 9, 7, 1, None, 2),
    "k3-stride3-pad0": (1, 2, 3, 10, 8, 3, 3, 0, 1),
    "k3-stride2-dilation2-pad4": (1, 1, 5, 6, 7, 3, 2, 4, 2),
    "wide-group": (1, 1, 48, 7, 6, 5, 2, None, 1),  # two channel chunks: partial kernel gradients are summed
    "two-tiles": (1, 1, 2, 19, 21, 3, 1, None, 1),  # more than one spatial tile a direction
}


# Every case in float32; the half types on a few (the interpreter is slow, and the property test mixes them too).
DTYPE_CASES = [(case, torch.float32) for case in CASES] + [
    (case, dtype)
    for dtype, cases in [
        (torch.bfloat16, ["k7-stride2", "wide-group", "k3-stride3-pad0"]),
        (torch.float16, ["k5-stride2", "k3-stride2-dilation2-pad4", "two-tiles"]),
    ]
    for case in cases
]


def case_inputs(case: str, dtype):
    """x, weight, grad and the window of one of CASES; layouts vary with the case so that each meets every dtype."""
    n, g, gc, h, w, k, s, p, d = CASES[case]
    p = d * (k - 1) // 2 if p is None else p
    layouts = [LAYOUTS[(list(CASES).index(case) + i) % 3] for i in range(3)]
    return (*make_case(n, g, gc, h, w, k, s, p, d, dtype, layouts), (k, s, p, d))


@pytest.mark.parametrize(("case", "dtype"), DTYPE_CASES, ids=[f"{c}-{str(d)[6:]}" for c, d in DTYPE_CASES])
def test_interpreted_kernels_match_reference(interpreter, case, dtype):
    x, weight, grad, conf = case_inputs(case, dtype)
    check_against_reference(run_interpreted(interpreter, x, weight, grad, conf), x, weight, grad, conf)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_interpreted_layouts_and_int64_offsets(interpreter, layout):
    conf = (3, 2, 1, 1)
    x, weight, grad = make_case(2, 1, 4, 7, 8, *conf, torch.float32, (layout,) * 3)
    check_against_reference(run_interpreted(interpreter, x, weight, grad, conf), x, weight, grad, conf)
    outputs = run_interpreted(interpreter, x, weight, grad, conf, {f"{CUDA}.needs_int64": always_true})
    check_against_reference(outputs, x, weight, grad, conf)


KERNEL_MODULES = {"channels_last": "adaptconv.ops.involution.triton_channels_last",
                  "contiguous": "adaptconv.ops.involution.triton_nchw"}  # fmt: skip


def _gpu_configs():
    """(layout, config) for every tile shape the autotuner may pick on a GPU: channels_last x runs the pixel-block
    kernels, contiguous x the spatial-tile ones."""
    import importlib

    return [(layout, c) for layout, name in KERNEL_MODULES.items() for c in importlib.import_module(name).GPU_CONFIGS]


@pytest.mark.parametrize(
    ("layout", "config"), _gpu_configs(), ids=lambda v: str(v.kwargs) if hasattr(v, "kwargs") else v
)
def test_interpreted_every_gpu_tile_shape(interpreter, layout, config):
    # The GPU runs whichever configuration its autotuner finds fastest: each must compute the same function.
    # Stride 2 (the output and input grids differ) and ragged last tiles.
    conf = (7, 2, 3, 1)
    x, weight, grad = make_case(1, 2, 16, 13, 19, *conf, torch.bfloat16, (layout,) * 3)
    # The autotuner runs the one configuration it is given (the interpreter's own list has one entry too).
    patches = {
        f"{KERNEL_MODULES[layout]}.{kernel}.configs": [config] for kernel in ("forward_kernel", "backward_kernel")
    }
    outputs = run_interpreted(interpreter, x, weight, grad, conf, patches)
    check_against_reference(outputs, x, weight, grad, conf)


@pytest.mark.parametrize(("setting", "tuned"), [(None, True), ("1", True), ("0", False)])
def test_autotune_switch(setting, tuned):
    # ADAPTCONV_AUTOTUNE=0 leaves each kernel one configuration (no tuning on a GPU); read at import.
    env = {k: v for k, v in os.environ.items() if k not in ("ADAPTCONV_AUTOTUNE", "TRITON_INTERPRET")}
    if setting is not None:
        env["ADAPTCONV_AUTOTUNE"] = setting
    code = (
        "from adaptconv.ops.involution import triton_nchw as t, triton_channels_last as p, triton_fused as f\n"
        "print(len(t.CONFIGS), len(t.GPU_CONFIGS), len(f.FUSED_CONFIGS), len(f.GPU_FUSED_CONFIGS),"
        " len(p.CONFIGS), len(p.GPU_CONFIGS))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    tile, tile_gpu, fused, fused_gpu, block, block_gpu = map(int, out.split())
    assert min(tile_gpu, fused_gpu, block_gpu) > 1
    assert (tile, fused, block) == ((tile_gpu, fused_gpu, block_gpu) if tuned else (1, 1, 1))


def test_tuning_is_kept_on_disk_and_ignores_the_batch():
    # A shape is tuned once on a machine (Triton's on-disk cache), and a new batch size tunes nothing: no autotuner's
    # key names the batch or a sample stride. This process imported the kernels without the interpreter.
    from adaptconv.ops.involution import triton_channels_last, triton_common, triton_fused, triton_nchw

    # asked for by the kernels themselves (Triton's TRITON_CACHE_AUTOTUNING=1 would turn it on for all)
    assert triton_common.AUTOTUNE_OPTIONS == {"cache_results": True}

    tuners = [triton_nchw.forward_kernel, triton_nchw.backward_kernel, triton_channels_last.forward_kernel,
              triton_channels_last.backward_kernel, triton_fused.fused_forward_kernel]  # fmt: skip
    for tuner in tuners:
        assert tuner.cache_results, tuner.base_fn.__name__
        assert not {"n", "batch", "N"} & set(tuner.keys) and not any(k.endswith("_n") for k in tuner.keys)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_interpreted_wide_groups_in_every_layout(interpreter, layout):
    # 40 channels a group: two channel chunks in both kernel families (channels_last ones and the others)
    conf = (5, 2, 2, 1)
    x, weight, grad = make_case(1, 2, 40, 7, 6, *conf, torch.bfloat16, (layout,) * 3)
    check_against_reference(run_interpreted(interpreter, x, weight, grad, conf), x, weight, grad, conf)


def test_interpreted_gradient_of_a_sum(interpreter):
    # y.sum().backward() hands the backward a grad_y expanded from one element: every stride is 0.
    conf = (3, 1, 1, 1)
    x, weight, _ = make_case(1, 2, 3, 6, 5, *conf, torch.float32)
    grad = torch.ones(()).expand(1, 6, 6, 5)
    check_against_reference(run_interpreted(interpreter, x, weight, grad, conf), x, weight, grad, conf)


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.integers(1, 2),
    group_channels=st.sampled_from([1, 3, 16]),
    h=st.integers(1, 10),
    w=st.integers(1, 10),
    k=st.sampled_from([1, 3, 5]),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
    extra_pad=st.integers(-1, 1),
    dtype=st.sampled_from([torch.float32, torch.bfloat16, torch.float16]),
    layouts=st.tuples(*[st.sampled_from(LAYOUTS)] * 3),
)
def test_interpreted_kernels_property(interpreter, n, groups, group_channels, h, w, k, s, d, extra_pad, dtype, layouts):
    p = max(0, d * (k - 1) // 2 + extra_pad)
    ho, wo = involution_output_size(h, w, k, s, p, d)
    if ho < 1 or wo < 1:
        return
    x, weight, grad = make_case(n, groups, group_channels, h, w, k, s, p, d, dtype, layouts)
    outputs = run_interpreted(interpreter, x, weight, grad, (k, s, p, d))
    check_against_reference(outputs, x, weight, grad, (k, s, p, d))


def make_fused_inputs(x, reduced_channels, k, layout, dtype):
    """Reduced features (N, C_r, H_out, W_out) and a span conv's (G*K*K, C_r) weight and bias for x."""
    n, c = x.shape[:2]
    ho, wo = involution_output_size(*x.shape[2:], k, 1, (k - 1) // 2, 1)
    groups = c // 16 if c % 16 == 0 else 1
    reduced = arrange(torch.randn(n, reduced_channels, ho, wo, device=x.device).to(dtype), layout)
    span_weight = (torch.randn(groups * k * k, reduced_channels, device=x.device) / reduced_channels**0.5).to(dtype)
    return reduced, span_weight, torch.randn(groups * k * k, device=x.device).to(dtype)


def check_fused_against_reference(out, x, reduced, span_weight, span_bias, conf):
    weight = torch.nn.functional.conv2d(reduced.double(), span_weight.double()[:, :, None, None], span_bias.double())
    assert rel_error(out, unfold_reference(x.double(), weight, *conf)) <= TOLERANCE[x.dtype]
    with FakeTensorMode() as mode:
        fake = torch.ops.adaptconv.involution_fused(*(mode.from_tensor(t) for t in (x, reduced, span_weight,
                                                                                     span_bias)), *conf)  # fmt: skip
    assert (out.shape, out.stride(), out.dtype) == (fake.shape, fake.stride(), fake.dtype)


# (C, H, W, K, reduced channels, dtype, layout): C_r = 40 takes two chunks of the generator's reduced channels.
FUSED_CASES = [
    (32, 9, 11, 3, 8, torch.float32, "contiguous"),
    (16, 7, 6, 5, 40, torch.float32, "channels_last"),
    (32, 6, 7, 7, 8, torch.bfloat16, "strided"),
]


@pytest.mark.parametrize("case", FUSED_CASES)
def test_interpreted_fused_kernel_matches_reference(interpreter, case):
    c, h, w, k, cr, dtype, layout = case
    conf = (k, 1, (k - 1) // 2, 1)
    x = arrange(torch.randn(1, c, h, w).to(dtype), layout)
    reduced, span_weight, span_bias = make_fused_inputs(x, cr, k, layout, dtype)
    from adaptconv.ops.involution import cuda

    out = interpreter.submit(cuda.fused_triton, x, reduced, span_weight, span_bias, *conf)
    check_fused_against_reference(out.result(), x, reduced, span_weight, span_bias, conf)


def test_cuda_kernels_are_registered():
    for op in (
        "adaptconv::involution_aggregate",
        "adaptconv::involution_aggregate_backward",
        "adaptconv::involution_fused",
    ):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(op, "CUDA")


def test_works_without_triton():
    # A fresh interpreter where importing triton fails: the package imports and the reference serves.
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from adaptconv.ops import involution_aggregate\n"
        "from adaptconv.ops.common import TRITON_INSTALLED\n"
        "assert not TRITON_INSTALLED\n"
        "x = torch.randn(1, 4, 5, 5, requires_grad=True)\n"
        "involution_aggregate(x, torch.randn(1, 9, 5, 5), 3).sum().backward()\n"
        "assert x.grad.shape == x.shape\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )


# --- On CUDA: the compiled kernels behind the custom op -------------------------------------------------------------


def run_op(x, weight, grad, conf):
    """y, grad_x, grad_weight through the public function (and so the custom op and its autograd)."""
    x, weight = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
    y = involution_aggregate(x, weight, *conf)
    return [y, *torch.autograd.grad(y, (x, weight), grad)]


# RedNet-50's aggregation shapes (C, H, K, stride) at a small batch, and odd sizes.
CUDA_SHAPES = [(32, 112, 3, 1), (64, 56, 7, 1), (128, 56, 7, 2), (256, 14, 7, 1), (512, 14, 7, 2), (48, 13, 5, 1)]


@pytest.mark.gpu
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", CUDA_SHAPES)
def test_cuda_op_matches_reference(shape, dtype, layout):
    c, h, k, s = shape
    conf = (k, s, (k - 1) // 2, 1)
    x, weight, grad = make_case(2, c // 16, 16, h, h + 1, *conf, dtype, (layout,) * 3, device="cuda")
    check_against_reference(run_op(x, weight, grad, conf), x, weight, grad, conf)


@pytest.mark.gpu
@pytest.mark.parametrize("conf", [(3, 1, 2, 2), (5, 3, 0, 1), (7, 2, 3, 1)])
def test_cuda_op_strides_dilations_and_wide_groups(conf):
    x, weight, grad = make_case(3, 2, 40, 17, 15, *conf, torch.bfloat16, ("channels_last",) * 3, device="cuda")
    check_against_reference(run_op(x, weight, grad, conf), x, weight, grad, conf)
    # The kernels called directly, with int64 offsets forced.
    forward, backward = launchers()
    patches = {f"{CUDA}.needs_int64": always_true}
    outputs = [
        call_patched(patches, forward, x, weight, *conf),
        *call_patched(patches, backward, grad, x, weight, *conf),
    ]
    check_against_reference(outputs, x, weight, grad, conf)


@pytest.mark.gpu
def test_cuda_op_runs_the_triton_kernels_and_passes_opcheck():
    x, weight, grad = make_case(2, 2, 16, 9, 11, 7, 2, 3, 1, torch.float32, device="cuda")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        run_op(x, weight, grad, (7, 2, 3, 1))
        torch.cuda.synchronize()
    names = {e.name for e in prof.events()}
    assert any("forward_kernel" in name for name in names) and any("backward_kernel" in name for name in names)
    torch.library.opcheck(torch.ops.adaptconv.involution_aggregate.default, (x, weight, 7, 2, 3, 1))
    torch.library.opcheck(torch.ops.adaptconv.involution_aggregate_backward.default, (grad, x, weight, 7, 2, 3, 1))


@pytest.mark.gpu
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("size", [(29, 31), (28, 30)])  # even sides in channels_last: the stride pool's window mean
@pytest.mark.usefixtures("no_tf32")
def test_compiled_layer_matches_float64_reference_on_cuda(channels_last, fused, size):
    # Each case compiles Involution2d.forward again (another layout, size or path): without a reset the cases
    # together pass dynamo's recompile limit, which fullgraph=True turns into an error.
    torch._dynamo.reset()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    layer = Involution2d(64, 7, 2, fused=fused).cuda().to(memory_format=fmt)
    reference = Involution2d(64, 7, 2).double()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(4, 64, *size, device="cuda").contiguous(memory_format=fmt).requires_grad_(True)
    xr = x.detach().cpu().double().requires_grad_(True)
    y = torch.compile(layer, fullgraph=True)(x)  # fullgraph: a graph break would raise
    yr = reference(xr)
    grad = torch.randn_like(yr)
    y.backward(grad.to(y))
    yr.backward(grad)
    # Convolutions and batch norm in float32 on one side: a looser bound than for the aggregation alone.
    assert rel_error(y.cpu(), yr) <= 1e-4
    assert rel_error(x.grad.cpu(), xr.grad) <= 1e-4
    for (name, p), pr in zip(layer.named_parameters(), reference.parameters(), strict=True):
        assert rel_error(p.grad.cpu(), pr.grad) <= 1e-4, name


@pytest.mark.gpu
def test_cuda_batch_512_beyond_int32_offsets():
    # x has 512 * 256 * 136 * 136 > 2**31 elements: the last samples' offsets only fit in int64. A few samples are
    # compared with the reference (float64 unfold of all of them would not fit in memory).
    n, c, h, conf = 512, 256, 136, (3, 1, 1, 1)
    x, weight, grad = make_case(n, c // 16, 16, h, h, *conf, torch.float16, device="cuda")
    assert x.stride(0) * (n - 1) > 2**31
    outputs = run_op(x, weight, grad, conf)
    picked = [0, 300, n - 1]
    check_against_reference([t[picked] for t in outputs], x[picked], weight[picked], grad[picked], conf)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(32, 112, 3), (64, 56, 7), (512, 7, 7)])
@pytest.mark.usefixtures("no_tf32")
def test_cuda_fused_op_matches_reference(shape, dtype, layout):
    c, h, k = shape
    conf = (k, 1, (k - 1) // 2, 1)
    x = arrange(torch.randn(2, c, h, h + 1, device="cuda").to(dtype), layout)
    inputs = [x, *make_fused_inputs(x, c // 4, k, layout, dtype)]
    y = involution_fused(*inputs, *conf)
    check_fused_against_reference(y, *inputs, conf)
    # The backward (recomputed kernels, the aggregation's backward kernel, the span's gradients) against autograd
    # through the float64 formulation.
    leaves = [t.detach().requires_grad_(True) for t in inputs]
    grad = torch.randn_like(y)
    out = torch.autograd.grad(involution_fused(*leaves, *conf), leaves, grad)
    ref_leaves = [t.detach().double().requires_grad_(True) for t in inputs]
    weight = torch.nn.functional.conv2d(ref_leaves[1], ref_leaves[2][:, :, None, None], ref_leaves[3])
    ref = torch.autograd.grad(unfold_reference(ref_leaves[0], weight, *conf), ref_leaves, grad.double())
    for name, a, b in zip(("x", "reduced", "span_weight", "span_bias"), out, ref, strict=True):
        assert rel_error(a, b) <= TOLERANCE[dtype], name
