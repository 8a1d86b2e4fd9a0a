"""The CUDA C++ kernels of the aggregation for channels_last tensors (``aggregation_channels_last.cu``, launched by
``nvrtc_channels_last.py``).

On CPU: every specialisation the launchers can ask for compiles with NVRTC for sm_90 without spilling registers,
the launch plans fit the kernels' limits, and the Python struct matches the kernels'. On CUDA (tests marked gpu):
forward and both gradients against the float64 unfold formulation with autograd, on random data, through the
custom op as models use it; CUDA graph capture and torch.compile.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
from helpers import arrange, rel_error

from adaptconv.ops import involution_aggregate, involution_output_size, nvrtc
from adaptconv.ops import involution_aggregate_unfold as unfold_reference
from adaptconv.ops.common import memory_format_of
from adaptconv.ops.involution import nvrtc_channels_last as launcher

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="NVRTC (cuda-bindings) is not installed")
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}
H100_SMEM, H100_SMS = 227 * 1024, 132


@pytest.fixture(autouse=True)
def _switched_on(monkeypatch):
    """The kernels are off by default (slower than Triton so far): these tests switch them on."""
    monkeypatch.setenv(launcher.ENV_SWITCH, "1")


@needs_nvrtc
@pytest.mark.parametrize("spec", launcher.specialisations(), ids=lambda s: f"{str(s.dtype)[6:]}-k{s.kernel_size}"
                         f"-s{s.stride}-d{s.dilation}")  # fmt: skip
def test_every_specialisation_compiles_for_sm90_without_spills(spec):
    cubin, log = nvrtc._compile(launcher.source(), nvrtc.compile_options(spec.defines(), "sm_90"))
    assert cubin[:4] == b"\x7fELF"
    entries = re.findall(r"Compiling entry function '(\w+)'", log)
    assert sorted(entries) == ["aggregate_backward_input", "aggregate_backward_weight", "aggregate_forward"]
    assert re.findall(r"(\d+) bytes spill stores", log) == ["0"] * 3, log
    assert re.findall(r"(\d+) bytes stack frame", log) == ["0"] * 3, log


def test_geometry_struct_matches_the_kernels():
    text = launcher.source().text
    body = re.search(r"struct Geometry \{(.*?)\};", text, re.S).group(1)
    fields = re.findall(r"\b(\w+)\s*[,;]", re.sub(r"//[^\n]*", "", body))
    assert fields == [name for name, _ in launcher.Geometry._fields_]


def test_specialisation_set():
    assert launcher.specialisation(torch.bfloat16, 7, 2, 1) in launcher.specialisations()
    f32 = torch.float32
    for args in [(torch.float64, 7, 1, 1), (f32, 9, 1, 1), (f32, 3, 3, 1), (f32, 3, 1, 3)]:
        assert launcher.specialisation(*args) is None
    assert len(set(launcher.specialisations())) == 3 * 4 * 2 * 2


# (C, G, H, W, K, stride, dilation): RedNet-50's layers and odd ones
PLAN_SHAPES = [(32, 2, 112, 112, 3, 1, 1), (64, 4, 56, 56, 7, 1, 1), (128, 8, 56, 56, 7, 2, 1),
               (128, 8, 28, 28, 7, 1, 1), (256, 16, 14, 14, 7, 1, 1), (512, 32, 14, 14, 7, 2, 1),
               (512, 32, 7, 7, 7, 1, 1), (16, 1, 5, 9, 7, 2, 2), (1024, 128, 3, 200, 5, 1, 2)]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kernel", ["forward", "backward_weight", "backward_input"])
@pytest.mark.parametrize("shape", PLAN_SHAPES)
def test_plans_cover_the_map_within_the_limits(shape, kernel, dtype):
    c, groups, h, w, k, s, d = shape
    spec = launcher.Specialisation(dtype, k, s, d)
    pad = d * (k - 1) // 2
    ho, wo = involution_output_size(h, w, k, s, pad, d)
    rows, cols = (h, w) if kernel == "backward_input" else (ho, wo)
    plans = [launcher.plan(kernel, spec, n, c, groups, rows, cols, (ho, wo), (h, w), pad, H100_SMEM, H100_SMS)
             for n in (1, 7, 64)]  # fmt: skip
    for n, p in zip((1, 7, 64), plans, strict=True):
        g = p.geometry
        lanes = g.GC // spec.vector
        assert p.block[0] == g.CB // spec.vector * g.PXT <= launcher.MAX_THREADS
        assert g.CB % g.GC == 0 and c % g.CB == 0 and p.block[0] % lanes == 0
        assert p.smem <= H100_SMEM
        step = launcher.PIXELS * (s if kernel == "backward_input" else 1)
        assert g.col_tiles * g.PXT * step >= cols and g.slices * g.CB == c
        strips = p.grid[0] // (g.col_tiles * g.slices)
        assert strips * g.RB >= rows and (strips - 1) * g.RB < rows and p.grid[1] == n
    # The tile of a block does not depend on the batch (only the number of blocks and the strip length do).
    assert len({(p.geometry.CB, p.geometry.PXT, p.smem) for p in plans}) == 1


def test_plan_gives_up_where_no_block_fits():
    spec = launcher.Specialisation(torch.float32, 7, 1, 2)
    assert launcher.plan("forward", spec, 1, 64, 4, 9, 9, (9, 9), (9, 9), 6, 1024, 100) is None


def test_cpu_tensors_are_not_taken():
    x = torch.randn(1, 16, 5, 5).contiguous(memory_format=torch.channels_last)
    assert not launcher.supports(x, torch.randn(1, 9, 5, 5), 3, 1, 1, 1)


@pytest.mark.gpu
@needs_nvrtc
def test_off_unless_switched_on(monkeypatch):
    x, weight, _ = make_inputs(1, 1, 16, 5, 5, 3, 1, 1, 1, torch.float32)
    assert launcher.supports(x, weight, 3, 1, 1, 1)
    monkeypatch.delenv(launcher.ENV_SWITCH)
    assert not launcher.supports(x, weight, 3, 1, 1, 1)


# --- On CUDA --------------------------------------------------------------------------------------------------------


def make_inputs(n, groups, gc, h, w, k, s, p, d, dtype, layouts=("channels_last",) * 3):
    ho, wo = involution_output_size(h, w, k, s, p, d)
    shapes = [(n, groups * gc, h, w), (n, groups * k * k, ho, wo), (n, groups * gc, ho, wo)]
    pairs = zip(shapes, layouts, strict=True)
    return [arrange(torch.randn(shape, device="cuda").to(dtype), layout) for shape, layout in pairs]


def poison_allocator(nbytes: int) -> None:
    """Leave NaNs in the caching allocator's free blocks, so that an output element the kernels fail to write is
    seen (torch.empty hands those blocks out again)."""
    torch.empty(nbytes // 4 + 1024, device="cuda").fill_(math.nan)


def run_op(x, weight, grad, conf):
    x, weight = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
    y = involution_aggregate(x, weight, *conf)
    return [y, *torch.autograd.grad(y, (x, weight), grad)]


def check(outputs, x, weight, grad, conf):
    xr, wr = x.detach().double().requires_grad_(True), weight.detach().double().requires_grad_(True)
    ref = unfold_reference(xr, wr, *conf)
    refs = [ref, *torch.autograd.grad(ref, (xr, wr), grad.double())]
    for name, out, r in zip(("y", "grad_x", "grad_w"), outputs, refs, strict=True):
        assert out.dtype == x.dtype and out.shape == r.shape, name
        assert rel_error(out, r) <= TOLERANCE[x.dtype], name


def kernels_run(fn) -> set[str]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return {e.name for e in prof.events()}


NVRTC_KERNELS = {"aggregate_forward", "aggregate_backward_weight", "aggregate_backward_input"}

# (N, G, channels a group, H, W, K, stride, padding or None for 'same', dilation)
GPU_CASES = {
    "k7-odd": (2, 2, 16, 13, 11, 7, 1, None, 1),
    "k7-stride2-odd": (2, 2, 16, 15, 9, 7, 2, None, 1),
    "k3-dilation2": (1, 3, 16, 10, 17, 3, 1, None, 2),
    "k5-stride2-dilation2-pad1": (1, 1, 32, 12, 9, 5, 2, 1, 2),
    "k1-stride2": (2, 2, 16, 7, 8, 1, 2, 0, 1),
    "k3-pad0": (1, 4, 8, 6, 30, 3, 1, 0, 1),
    "batch1-many-groups": (1, 32, 16, 7, 7, 7, 1, None, 1),
    "wide-map": (1, 1, 64, 3, 123, 5, 1, None, 1),
}


@pytest.mark.gpu
@needs_nvrtc
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("case", list(GPU_CASES))
def test_matches_float64_reference(case, dtype):
    n, g, gc, h, w, k, s, p, d = GPU_CASES[case]
    p = d * (k - 1) // 2 if p is None else p
    if gc % (16 // torch.empty((), dtype=dtype).element_size()):
        pytest.skip("not whole vectors of channels a group")
    x, weight, grad = make_inputs(n, g, gc, h, w, k, s, p, d, dtype)
    assert launcher.supports(x, weight, k, s, p, d)
    poison_allocator(8 * x.nbytes + 8 * weight.nbytes)
    outputs = run_op(x, weight, grad, (k, s, p, d))
    check(outputs, x, weight, grad, (k, s, p, d))
    assert outputs[1].is_contiguous(memory_format=torch.channels_last)
    # Deterministic: no atomics, the same bits twice.
    again = run_op(x, weight, grad, (k, s, p, d))
    assert all(torch.equal(a, b) for a, b in zip(outputs, again, strict=True))


@pytest.mark.gpu
@needs_nvrtc
@pytest.mark.parametrize("layouts", [("channels_last", "contiguous", "strided"),
                                     ("channels_last", "strided", "contiguous")])  # fmt: skip
def test_other_layouts_of_weight_and_gradient(layouts):
    conf = (7, 2, 3, 1)
    x, weight, grad = make_inputs(2, 2, 16, 13, 14, *conf, torch.bfloat16, layouts)
    names = kernels_run(lambda: check(run_op(x, weight, grad, conf), x, weight, grad, conf))
    assert NVRTC_KERNELS <= names
    gw = run_op(x, weight, grad, conf)[2]
    assert gw.stride() == torch.empty_like(weight, memory_format=memory_format_of(weight)).stride()  # as the fake's


@pytest.mark.gpu
@needs_nvrtc
def test_non_contiguous_x_goes_to_triton():
    conf = (3, 1, 1, 1)
    wide = make_inputs(2, 2, 16, 9, 9, *conf, torch.float32)[0]
    x = wide[:, :, 1:, :]  # channels_last strides, not dense
    weight = torch.randn(2, 2 * 9, 8, 9, device="cuda")
    grad = torch.randn(2, 32, 8, 9, device="cuda")
    assert not launcher.supports(x, weight, *conf)
    names = kernels_run(lambda: check(run_op(x, weight, grad, conf), x, weight, grad, conf))
    assert not NVRTC_KERNELS & names


@pytest.mark.gpu
@needs_nvrtc
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(64, 56, 7, 1), (128, 56, 7, 2), (256, 14, 7, 1), (512, 7, 7, 1), (32, 112, 3, 1)])
def test_rednet50_shapes(shape, dtype):
    c, h, k, s = shape
    conf = (k, s, (k - 1) // 2, 1)
    x, weight, grad = make_inputs(2, c // 16, 16, h, h, *conf, dtype)
    names = kernels_run(lambda: check(run_op(x, weight, grad, conf), x, weight, grad, conf))
    assert NVRTC_KERNELS <= names


@pytest.mark.gpu
@needs_nvrtc
def test_cuda_graph_capture_and_replay():
    conf = (7, 1, 3, 1)
    x, weight, grad = make_inputs(2, 4, 16, 14, 14, *conf, torch.bfloat16)
    x.requires_grad_(True)
    weight.requires_grad_(True)

    def step():
        y = involution_aggregate(x, weight, *conf)
        return (y, *torch.autograd.grad(y, (x, weight), grad))

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        step()  # compiled and loaded before capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step()
    with torch.no_grad():
        for t in (x, weight, grad):
            t.copy_(torch.randn_like(t))
    graph.replay()
    torch.cuda.synchronize()
    check(outputs, x, weight, grad, conf)


@pytest.mark.gpu
@needs_nvrtc
@pytest.mark.parametrize("mode", [None, "reduce-overhead"])
def test_torch_compile_fullgraph(mode):
    torch._dynamo.reset()
    conf = (7, 2, 3, 1)
    x, weight, grad = make_inputs(2, 4, 16, 15, 14, *conf, torch.bfloat16)

    def f(x, weight):
        return involution_aggregate(x, weight, *conf) * 2

    compiled = torch.compile(f, fullgraph=True, mode=mode)
    for _ in range(3):  # reduce-overhead records a graph on a later call
        xs, ws = x.detach().requires_grad_(True), weight.detach().requires_grad_(True)
        y = compiled(xs, ws)
        gx, gw = torch.autograd.grad(y, (xs, ws), grad)
    check([y / 2, gx / 2, gw / 2], x, weight, grad, conf)
