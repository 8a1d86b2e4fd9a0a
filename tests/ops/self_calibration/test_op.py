"""The self-calibration's custom ops (``op.py``) and their CUDA implementation (Triton kernels) against float64
autograd through the official code's ops (nearest up-sampling, sigmoid, average pooling).

On CPU the kernels run in Triton's interpreter (the ``interpreter`` fixture's worker); on CUDA (tests marked gpu)
the real kernels run through the custom ops, as SelfCalibratedConv2d uses them.
"""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torch.nn.functional as F
from helpers import arrange, call_patched, rel_error
from hypothesis import given, settings
from hypothesis import strategies as st
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from adaptconv.ops import SelfCalibratedConv2d, calibrate
from adaptconv.ops.common import TRITON_INSTALLED
from adaptconv.ops.self_calibration.reference import nearest_source_index

TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}
needs_triton = pytest.mark.skipif(not TRITON_INSTALLED, reason="triton is not installed")
CUDA = "adaptconv.ops.self_calibration.cuda"


def cuda_module():
    """The CUDA implementation's module (it imports triton: only where the tests need it)."""
    from adaptconv.ops.self_calibration import cuda

    return cuda


# (N, C, H, W, kh, kw): maps divisible by the window or not, smaller than r (the window shrunk to the map), wide
# channel counts that take two channel chunks, one pixel.
CASES = {
    "divisible": (2, 8, 16, 12, 4, 4),
    "odd": (2, 5, 9, 11, 4, 4),
    "stage4-7px": (1, 6, 7, 7, 4, 4),
    "shrunk-window": (2, 3, 3, 9, 3, 4),
    "two-chunks": (1, 150, 8, 4, 4, 4),
    "one-pixel": (1, 4, 1, 1, 1, 1),
}


def make_case(n, c, h, w, kh, kw, dtype=torch.float32, layout="contiguous", device="cpu"):
    """x, k3 (N, C, H, W), y (K2's output on the pooled map) and the gradients of the gate's output and the pool's."""
    x, k3, grad = (arrange(torch.randn(n, c, h, w, device=device).to(dtype), layout) for _ in range(3))
    y, grad_pool = (arrange(torch.randn(n, c, h // kh, w // kw, device=device).to(dtype), layout) for _ in range(2))
    return x, k3, y, grad, grad_pool


def references(x, k3, y, grad, grad_pool, kh, kw):
    """float64 autograd through the official code's ops: gate output and its gradients; pool output and its."""
    xr, kr, yr = (t.detach().double().requires_grad_(True) for t in (x, k3, y))
    out = kr * torch.sigmoid(xr + F.interpolate(yr, size=x.shape[-2:], mode="nearest"))
    pooled = F.avg_pool2d(xr, (kh, kw), (kh, kw))
    return [out, *torch.autograd.grad(out, (xr, kr, yr), grad.double()), pooled,
            torch.autograd.grad(pooled, xr, grad_pool.double())[0]]  # fmt: skip


def expected_layouts(x, k3, y, grad, grad_pool, kh, kw):
    """(shape, stride, dtype) of every output as the fake implementations promise it."""
    ops = torch.ops.adaptconv
    with FakeTensorMode() as mode:
        fx, fk, fy, fg, fp = (mode.from_tensor(t) for t in (x, k3, y, grad, grad_pool))
        outs = [ops.calibrate(fx, fk, fy), *ops.calibrate_backward(fg, fx, fk, fy), ops.calibration_pool(fx, kh, kw),
                ops.calibration_pool_backward(fp, fx, kh, kw)]  # fmt: skip
    return [(t.shape, t.stride(), t.dtype) for t in outs]


def check(outputs, case, kh, kw):
    names = ("out", "grad_x", "grad_k3", "grad_y", "pooled", "grad_pool")
    for name, out, ref, layout in zip(names, outputs, references(*case, kh, kw), expected_layouts(*case, kh, kw),
                                      strict=True):  # fmt: skip
        assert (out.shape, out.stride(), out.dtype) == layout, name
        assert rel_error(out, ref) <= TOLERANCE[case[0].dtype], name


def run_kernels(x, k3, y, grad, grad_pool, kh, kw):
    """Every kernel of the CUDA implementation on one case (in the process that calls it)."""
    t = cuda_module()
    return [t.calibrate_triton(x, k3, y), *t.calibrate_backward_triton(grad, x, k3, y),
            t.calibration_pool_triton(x, kh, kw),
            t.calibration_pool_backward_triton(grad_pool, x, kh, kw)]  # fmt: skip


def run_cuda_implementations(x, k3, y, grad, grad_pool, kh, kw):
    """The functions registered as the ops' CUDA implementations (run in the interpreter's worker, on CPU tensors,
    with ``MIN_ELEMENTS`` patched to 0 so that the kernels take every size)."""
    t = cuda_module()
    return [t.calibrate(x, k3, y), *t.calibrate_backward(grad, x, k3, y), t.calibration_pool(x, kh, kw),
            t.calibration_pool_backward(grad_pool, x, kh, kw)]  # fmt: skip


@pytest.mark.parametrize("out_size", [1, 3, 7, 14, 28, 56, 97])
def test_nearest_source_index_is_torch_nearest(out_size):
    for in_size in range(1, 30):
        rows = torch.arange(in_size, dtype=torch.float64).view(1, 1, in_size, 1)
        torch_src = F.interpolate(rows, size=(out_size, 1), mode="nearest").flatten().long()
        assert torch.equal(nearest_source_index(out_size, in_size), torch_src), (out_size, in_size)


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
def test_references_match_autograd(layout):
    """The custom ops' CPU implementations (the references) and their autograd formulas."""
    n, c, h, w, kh, kw = CASES["odd"]
    case = make_case(n, c, h, w, kh, kw, layout=layout)
    x, k3, y, grad, grad_pool = (t.detach().requires_grad_(True) for t in case)
    ops = torch.ops.adaptconv
    out = ops.calibrate(x, k3, y)
    grads = torch.autograd.grad(out, (x, k3, y), grad)
    pooled = ops.calibration_pool(x, kh, kw)
    check([out, *grads, pooled, torch.autograd.grad(pooled, x, grad_pool)[0]], case, kh, kw)


@pytest.mark.parametrize("op, args", [
    ("calibrate", lambda c: (c[0], c[1], c[2])),
    ("calibrate_backward", lambda c: (c[3], c[0], c[1], c[2])),
    ("calibration_pool", lambda c: (c[0], 4, 4)),
    ("calibration_pool_backward", lambda c: (c[4], c[0], 4, 4)),
])  # fmt: skip
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_opcheck(op, args, layout):
    # The backward ops have no gradient of their own (no double backward): their inputs need none.
    case = tuple(t.requires_grad_(not op.endswith("backward")) for t in make_case(*CASES["odd"], layout=layout))
    torch.library.opcheck(getattr(torch.ops.adaptconv, op), args(case))


def test_calibrate_explains_bad_shapes():
    x = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="x and k3 of one shape"):
        calibrate(x, torch.randn(1, 4, 8, 7), torch.randn(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r"y of shape \(N, C, H', W'\)"):
        calibrate(x, x, torch.randn(1, 3, 2, 2))


@needs_triton
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "strided"])
def test_interpreted_kernels_match_reference(interpreter, case, layout):
    n, c, h, w, kh, kw = CASES[case]
    tensors = make_case(n, c, h, w, kh, kw, layout=layout)
    check(interpreter.submit(run_kernels, *tensors, kh, kw).result(), tensors, kh, kw)


@needs_triton
@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_interpreted_cuda_implementations(interpreter, layout):
    """What the CUDA ops run: the kernels for channels_last, the references otherwise; either way the reference's
    values and the fakes' strides."""
    n, c, h, w, kh, kw = CASES["odd"]
    tensors = make_case(n, c, h, w, kh, kw, layout=layout)
    patches = {f"{CUDA}.MIN_ELEMENTS": 0}
    check(
        interpreter.submit(call_patched, patches, run_cuda_implementations, *tensors, kh, kw).result(), tensors, kh, kw
    )


@needs_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_interpreted_kernels_half_precision(interpreter, dtype):
    n, c, h, w, kh, kw = CASES["odd"]
    tensors = make_case(n, c, h, w, kh, kw, dtype=dtype, layout="channels_last")
    check(interpreter.submit(run_kernels, *tensors, kh, kw).result(), tensors, kh, kw)


@needs_triton
@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 40), h=st.integers(1, 13), w=st.integers(1, 13),
       r=st.integers(1, 5), dtype=st.sampled_from([torch.float32, torch.bfloat16]))  # fmt: skip
def test_interpreted_kernels_random_shapes(interpreter, n, c, h, w, r, dtype):
    kh, kw = min(r, h), min(r, w)
    tensors = make_case(n, c, h, w, kh, kw, dtype=dtype, layout="channels_last")
    check(interpreter.submit(run_kernels, *tensors, kh, kw).result(), tensors, kh, kw)


@pytest.mark.parametrize("stride", [1, 2])
def test_fused_and_unfused_modules_agree(stride):
    """Same function and gradients through the fused ops as through the official ops (both references on CPU)."""
    m = SelfCalibratedConv2d(6, stride=stride)
    x = torch.randn(2, 6, 13, 10, requires_grad=True)
    fused = m(x)
    grads = torch.autograd.grad(fused.square().sum(), (x, *m.parameters()))
    m.fused = False
    unfused = m(x)
    for a, b in zip(grads, torch.autograd.grad(unfused.square().sum(), (x, *m.parameters())), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(fused, unfused)


@pytest.fixture
def kernels_for_all_sizes(monkeypatch):
    """The CUDA ops launch the kernels on the tests' small tensors too (not only from MIN_ELEMENTS on)."""
    monkeypatch.setattr(cuda_module(), "MIN_ELEMENTS", 0)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("layout", ["channels_last", "contiguous", "strided"])
@pytest.mark.parametrize("case", ["odd", "stage4-7px", "two-chunks"])
def test_cuda_ops_match_reference(kernels_for_all_sizes, case, layout, dtype):
    """The ops as models call them on CUDA: kernels for channels_last, the references for the other layouts."""
    n, c, h, w, kh, kw = CASES[case]
    tensors = make_case(n, c, h, w, kh, kw, dtype=dtype, layout=layout, device="cuda")
    x, k3, y, grad, grad_pool = (t.detach().requires_grad_(True) for t in tensors)
    ops = torch.ops.adaptconv
    out = ops.calibrate(x, k3, y)
    pooled = ops.calibration_pool(x, kh, kw)
    outputs = [out, *torch.autograd.grad(out, (x, k3, y), grad), pooled,
               torch.autograd.grad(pooled, x, grad_pool)[0]]  # fmt: skip
    check(outputs, tensors, kh, kw)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("stride", [1, 2])
def test_cuda_module_fused_is_as_accurate_as_unfused(no_tf32, kernels_for_all_sizes, dtype, stride):
    """An eager training step of SelfCalibratedConv2d in channels_last: output and gradients of the fused kernels and
    of the official ops, each against float64 on the CPU; the fused ones may not be less accurate (bf16: autocast).
    (Compiled, both settings run the official ops: test_compiled_module_runs_the_official_ops; tests/models'
    inductor tests check that lowering.)"""
    m = SelfCalibratedConv2d(32, stride=stride).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(3, 32, 29, 23, device="cuda").to(memory_format=torch.channels_last).requires_grad_(True)

    def step(module, inputs, autocast):
        with torch.autocast("cuda", dtype=dtype, enabled=autocast):
            out = module(inputs)
        return [out, *torch.autograd.grad(out.float().square().sum(), (inputs, *module.parameters()))]

    ref64 = copy.deepcopy(m).cpu().double()
    ref64.fused = False
    ref = step(ref64, x.detach().cpu().double().requires_grad_(True), False)
    errors = {}
    for fused in (True, False):
        m.fused = fused
        got = step(m, x, dtype is not torch.float32)
        errors[fused] = [rel_error(a.cpu(), b) for a, b in zip(got, ref, strict=True)]
    floor = 1e-5 if dtype is torch.float32 else 1e-2
    for i, (fused_error, official_error) in enumerate(zip(errors[True], errors[False], strict=True)):
        assert fused_error <= max(2 * official_error, floor), (i, fused_error, official_error)


class _OpRecorder(TorchDispatchMode):
    """Records the name of every operator dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("hooked", [False, True])
def test_eager_module_calls_the_custom_ops_unless_the_gate_is_hooked(hooked):
    m = SelfCalibratedConv2d(4)
    if hooked:
        m.calibration_gate.register_forward_hook(lambda *_: None)
    with _OpRecorder() as rec:
        m(torch.randn(1, 4, 8, 8))
    ops = set(rec.names)
    assert "adaptconv.calibration_pool.default" in ops
    assert ("adaptconv.calibrate.default" in ops) is not hooked
    assert ("aten.sigmoid.default" in ops) is hooked


def test_compiled_module_runs_the_official_ops():
    """Under torch.compile the graph holds PyTorch's pooling, up-sampling and sigmoid, not the custom ops (inductor
    fuses those itself)."""
    graph_ops: list[str] = []

    def backend(gm, example_inputs):
        graph_ops.extend(str(node.target) for node in gm.graph.nodes)
        return gm.forward

    torch._dynamo.reset()
    torch.compile(SelfCalibratedConv2d(4), backend=backend, fullgraph=True)(torch.randn(1, 4, 8, 8))
    torch._dynamo.reset()
    assert any("sigmoid" in op for op in graph_ops) and any("avg_pool2d" in op for op in graph_ops)
    assert not any("adaptconv" in op for op in graph_ops)


@needs_triton
def test_kernels_serve_large_channels_last_tensors_of_one_dtype():
    """Which tensors the CUDA ops give the kernels (the rest go to the references); the rule itself, on CPU tensors."""
    served = functools.partial(cuda_module().served, min_elements=1000)
    big = torch.empty(2, 8, 10, 10).to(memory_format=torch.channels_last)  # 1600 elements
    assert served(big, big)
    assert not served(big.contiguous(), big)  # contiguous
    assert not served(big.double(), big.double())  # float64
    assert not served(big, big.half())  # mixed dtypes
    assert not served(big[:, :, :5])  # 800 elements
    assert served(big, big[:, :, :1, :1])  # the first tensor (the op's largest) decides
    wide = torch.empty_strided((2, 8, 10, 10), (2**33, 1, 2**28, 8), device="meta")  # offsets past int32
    assert not served(wide)


@pytest.mark.gpu
def test_cuda_kernels_serve_large_channels_last_maps_only(monkeypatch):
    """From MIN_ELEMENTS on, channels_last: the kernel (seen through a counting wrapper); smaller: the reference."""
    calls = []
    t = cuda_module()
    kernel = t.calibrate_triton
    monkeypatch.setattr(t, "calibrate_triton", lambda *a: calls.append(1) or kernel(*a))
    for n, expected in ((1, 0), (t.MIN_ELEMENTS // (8 * 16 * 16), 1)):
        x, k3, y, *_ = make_case(n, 8, 16, 16, 4, 4, layout="channels_last", device="cuda")
        calibrate(x, k3, y)
        assert len(calls) == expected, n
