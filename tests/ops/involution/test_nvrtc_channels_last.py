"""The CUDA C++ kernels of the aggregation for channels_last tensors (``aggregation_channels_last.cu``, launched by
``nvrtc_channels_last.py``).

On CPU: every specialisation the launchers can ask for compiles with NVRTC for sm_90 without spilling registers,
the launch plans fit the kernels' limits and write every output element exactly once (computed from the plan as the
kernels index it), and the Python struct matches the kernels'. On CUDA (tests marked gpu):
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
H100_SMEM = 227 * 1024


@pytest.fixture(autouse=True)
def _switched_on(monkeypatch):
    """By default only the forward runs here (the gradients are slower than Triton's so far): these tests switch
    the gradients on too."""
    monkeypatch.setenv(launcher.ENV_SWITCH, "1")


@needs_nvrtc
@pytest.mark.parametrize("spec", launcher.specialisations(), ids=lambda s: f"{str(s.dtype)[6:]}-k{s.kernel_size}"
                         f"-s{s.stride}-d{s.dilation}")  # fmt: skip
def test_every_specialisation_compiles_for_sm90_without_spills(spec):
    cubin, log = nvrtc._compile(launcher.source(), nvrtc.compile_options(spec.defines(), "sm_90"))
    assert cubin[:4] == b"\x7fELF"
    entries = re.findall(r"Compiling entry function '(\w+)'", log)
    assert sorted(entries) == sorted(ENTRY_POINTS)
    assert re.findall(r"(\d+) bytes spill stores", log) == ["0"] * len(ENTRY_POINTS), log
    assert re.findall(r"(\d+) bytes stack frame", log) == ["0"] * len(ENTRY_POINTS), log


#: every entry point of the source: the forward, grad_x, and grad_w for groups of 16 channels and for the others
ENTRY_POINTS = ["aggregate_forward", "aggregate_backward_input", "aggregate_backward_weight_any",
                "aggregate_backward_weight_gc16"]  # fmt: skip


@pytest.mark.parametrize(("group_channels", "entry"), [(16, "aggregate_backward_weight_gc16"),
                                                        (8, "aggregate_backward_weight_any"),
                                                        (32, "aggregate_backward_weight_any")])  # fmt: skip
def test_grad_w_entry_point_follows_the_group_width(group_channels, entry):
    assert launcher.entry_point("backward_weight", group_channels) == entry
    assert launcher.entry_point("forward", group_channels) == "aggregate_forward"
    assert launcher.entry_point("backward_input", group_channels) == "aggregate_backward_input"


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
               (512, 32, 7, 7, 7, 1, 1), (16, 1, 5, 9, 7, 2, 2), (1024, 128, 3, 200, 5, 1, 2),
               (48, 3, 13, 11, 7, 1, 1), (96, 3, 15, 9, 3, 2, 1), (128, 1, 1, 1, 1, 1, 1)]  # fmt: skip


def plans_of(shape, kernel, dtype, batches=(1, 7, 64)):
    c, groups, h, w, k, s, d = shape
    spec = launcher.Specialisation(dtype, k, s, d)
    pad = d * (k - 1) // 2
    ho, wo = involution_output_size(h, w, k, s, pad, d)
    return spec, [launcher.plan(kernel, spec, n, c, groups, (ho, wo), (h, w), pad, H100_SMEM) for n in batches]


def written(plan, spec, kernel):
    """The (n, row, column, channel vector) every thread of the launch writes, as the kernels index them (Place,
    then P consecutive columns): computed from the plan alone."""
    g, p = plan.geometry, launcher.PIXELS
    rows, cols = (g.H, g.W) if kernel == "backward_input" else (g.Ho, g.Wo)
    cv_count, out = g.CB // spec.vector, []
    for n in range(plan.grid[1]):
        for b in range(plan.grid[0]):
            tile, rest = b % g.col_tiles, b // g.col_tiles
            slice_, rtile = rest % g.slices, rest // g.slices
            for t in range(plan.block[0]):
                cv, px, rt = t % cv_count, (t // cv_count) % g.PXT, t // (cv_count * g.PXT)
                row, first = rtile * g.RT + rt, tile * g.PXT * p + px * p
                vec = (slice_ * g.CB) // spec.vector + cv
                out += [(n, row, col, vec) for col in range(first, first + p) if row < rows and col < cols]
    return out, rows, cols


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kernel", launcher.KERNELS)
@pytest.mark.parametrize("shape", PLAN_SHAPES)
def test_plans_fit_the_limits_and_do_not_depend_on_the_batch(shape, kernel, dtype):
    spec, plans = plans_of(shape, kernel, dtype)
    c, k, s, d = shape[0], *shape[4:]
    for n, p in zip((1, 7, 64), plans, strict=True):
        g = p.geometry
        lanes = g.GC // spec.vector
        threads = g.CB // spec.vector * g.PXT * g.RT
        assert p.block == (threads, 1, 1) and threads <= launcher.MAX_THREADS and threads % 32 == 0
        assert g.CB % g.GC == 0 and c % g.CB == 0 and threads % lanes == 0 and g.slices * g.CB == c
        assert p.smem <= H100_SMEM and p.grid == (g.col_tiles * g.slices * g.row_tiles, n, 1)
        rows, cols = (g.H, g.W) if kernel == "backward_input" else (g.Ho, g.Wo)
        tw = g.PXT * launcher.PIXELS
        assert (g.col_tiles - 1) * tw < cols <= g.col_tiles * tw
        assert (g.row_tiles - 1) * g.RT < rows <= g.row_tiles * g.RT
        # the shared memory the kernels carve out of the tile
        cbg, esize = g.CB // g.GC, spec.element_size
        if kernel == "backward_input":
            # every output column a block's input columns gather from has a slot
            for col0 in range(0, cols, tw):
                lo = (col0 + g.pad - (k - 1) * d) // s
                hi = (col0 + tw - 1 + g.pad) // s
                assert hi - lo + 1 <= g.TWO
            assert p.smem == 2 * g.RT * g.TWO * cbg * launcher.slot_elements(spec) * esize
            assert launcher.slot_elements(spec) >= spec.vector - 1 + k
        else:
            assert g.wstride % spec.vector == 0 and g.wstride >= spec.vector - 1 + cbg * k * k
            assert p.smem == g.RT * tw * g.wstride * esize
    # The tile of a block does not depend on the batch (only the number of blocks does).
    assert len({(p.geometry.CB, p.geometry.PXT, p.geometry.RT, p.smem, p.block) for p in plans}) == 1


@pytest.mark.parametrize("kernel", launcher.KERNELS)
@pytest.mark.parametrize("shape", [s for s in PLAN_SHAPES if s[0] * s[2] * s[3] <= 256 * 14 * 14])
def test_plans_write_every_output_once(shape, kernel):
    spec, (plan,) = plans_of(shape, kernel, torch.bfloat16, batches=(2,))
    out, rows, cols = written(plan, spec, kernel)
    assert len(out) == len(set(out)) == 2 * rows * cols * shape[0] // spec.vector


def test_rednet50_tiles_fill_the_blocks():
    """At RedNet-50's 7x7 layers every launched thread has work, in blocks of 64-256 threads that leave room for at
    least 16 warps a multiprocessor (shared memory permitting)."""
    for shape in [s for s in PLAN_SHAPES[1:7] if s[4] == 7]:
        for kernel in launcher.KERNELS:
            for dtype in (torch.float32, torch.bfloat16):
                spec, (p,) = plans_of(shape, kernel, dtype, batches=(64,))
                g = p.geometry
                rows, cols = (g.H, g.W) if kernel == "backward_input" else (g.Ho, g.Wo)
                assert rows % g.RT == 0 and cols % (g.PXT * launcher.PIXELS) == 0, (shape, kernel, dtype)
                assert 64 <= p.block[0] <= 256 and (H100_SMEM + 1024) // (p.smem + 1024) * p.block[0] >= 512


def test_plan_gives_up_where_no_block_fits():
    spec = launcher.Specialisation(torch.float32, 7, 1, 2)
    assert launcher.plan("forward", spec, 1, 64, 4, (9, 9), (9, 9), 6, 1024) is None


def test_cpu_tensors_are_not_taken():
    x = torch.randn(1, 16, 5, 5).contiguous(memory_format=torch.channels_last)
    assert not launcher.supports(x, torch.randn(1, 9, 5, 5), 3, 1, 1, 1)


@pytest.mark.parametrize(("value", "forward", "backward"), [(None, True, False), ("forward", True, False),
                                                             ("1", True, True), ("0", False, False)])  # fmt: skip
def test_switch_chooses_the_directions(monkeypatch, value, forward, backward):
    if value is None:
        monkeypatch.delenv(launcher.ENV_SWITCH)
    else:
        monkeypatch.setenv(launcher.ENV_SWITCH, value)
    assert (launcher.enabled("forward"), launcher.enabled("backward")) == (forward, backward)


def test_switch_rejects_other_values(monkeypatch):
    monkeypatch.setenv(launcher.ENV_SWITCH, "yes")
    with pytest.raises(ValueError, match="ADAPTCONV_NVRTC='yes' is not a setting: use forward"):
        launcher.enabled("forward")


def test_kernels_that_do_not_build_leave_the_calls_to_triton_with_one_warning(monkeypatch):
    # e.g. a GPU newer than the installed NVRTC: the compile fails once, a warning says so, Triton serves
    calls = []

    def fail(*args):
        calls.append(args)
        raise nvrtc.CompileError("aggregation_channels_last.cu", ("--gpu-architecture=sm_999",), "unknown arch")

    monkeypatch.setattr(nvrtc, "get_function", fail)
    monkeypatch.setattr(launcher, "_BUILT", {})
    spec = launcher.Specialisation(torch.bfloat16, 7, 1, 1)
    with pytest.warns(RuntimeWarning, match="could not be built for GPU 0: .*the Triton kernels serve instead"):
        assert not launcher.built(spec, torch.device("cuda", 0))
    assert not launcher.built(spec, torch.device("cuda", 0))  # tried once
    assert len(calls) == 1


@pytest.mark.gpu
@needs_nvrtc
def test_switch_decides_which_directions_run_here(monkeypatch):
    x, weight, _ = make_inputs(1, 1, 16, 5, 5, 3, 1, 1, 1, torch.float32)
    assert launcher.supports(x, weight, 3, 1, 1, 1) and launcher.supports(x, weight, 3, 1, 1, 1, "backward")
    monkeypatch.delenv(launcher.ENV_SWITCH)
    assert launcher.supports(x, weight, 3, 1, 1, 1) and not launcher.supports(x, weight, 3, 1, 1, 1, "backward")
    monkeypatch.setenv(launcher.ENV_SWITCH, "0")
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
    """The names of the kernels ``fn`` ran, grad_w's entry points under one name."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return {re.sub(r"^aggregate_backward_weight_\w+$", "aggregate_backward_weight", e.name) for e in prof.events()}


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
