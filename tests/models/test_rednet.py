import torch

import adaptconv
from adaptconv.ops import Involution2d


def _assert_same_grads(model: torch.nn.Module, ref: torch.nn.Module, **tol) -> None:
    for (name, a), b in zip(ref.named_parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name, **tol)


def test_fused_involution_is_the_same_model():
    ref = adaptconv.create_model("rednet26", num_classes=10, channels=(16, 32, 64, 128)).double()
    fused = adaptconv.create_model("rednet26", num_classes=10, channels=(16, 32, 64, 128), fused_involution=True)
    fused = fused.double()
    fused.load_state_dict(ref.state_dict())
    involutions = [m for m in fused.modules() if isinstance(m, Involution2d)]
    assert len(involutions) == 1 + 8 and all(m.fused for m in involutions)  # stem and one per block
    assert not any(m.fused for m in ref.modules() if isinstance(m, Involution2d))
    x = torch.randn(2, 3, 45, 38, dtype=torch.float64)
    y, yf = ref(x), fused(x)
    torch.testing.assert_close(yf, y, rtol=1e-10, atol=1e-10)
    y.sum().backward()
    yf.sum().backward()
    _assert_same_grads(fused, ref, rtol=1e-8, atol=1e-10)


def test_recomputed_stem_is_the_same_model_with_less_saved_and_one_stats_update():
    from benchmarks.saved_memory import saved_bytes_per_image  # the repository's benchmarks/, not the package

    kwargs = dict(num_classes=10, channels=(16, 32, 64, 128))
    ref = adaptconv.create_model("rednet26", **kwargs).double()
    rec = adaptconv.create_model("rednet26", recompute_stem=True, **kwargs).double()
    assert rec.state_dict().keys() == ref.state_dict().keys()
    rec.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 45, 38, dtype=torch.float64)
    y, yr = ref(x), rec(x)
    torch.testing.assert_close(yr, y, rtol=1e-12, atol=1e-12)
    y.square().sum().backward()
    yr.square().sum().backward()
    _assert_same_grads(rec, ref, rtol=1e-10, atol=1e-12)
    # one forward and backward: the running statistics moved once, as without recomputation
    for (name, a), b in zip(ref.named_buffers(), rec.buffers(), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0, msg=name)
    assert int(rec.conv1[0].bn.num_batches_tracked) == 1
    saved = [saved_bytes_per_image(m.float(), (3, 64, 64), 2) for m in (ref, rec)]
    assert saved[1] < 0.9 * saved[0]


def test_compiled_whole_graph_with_both_options():
    # under torch.compile the stem's recomputation is left to the compiler: one graph, the same function
    kwargs = dict(num_classes=10, channels=(16, 32, 64, 128), fused_involution=True, recompute_stem=True)
    model = adaptconv.create_model("rednet26", **kwargs)
    ref = adaptconv.create_model("rednet26", num_classes=10, channels=(16, 32, 64, 128))
    ref.load_state_dict(model.state_dict())
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    x = torch.randn(2, 3, 40, 40)
    y, yr = compiled(x), ref(x)
    torch.testing.assert_close(y, yr, rtol=1e-4, atol=1e-5)
    y.sum().backward()
    yr.sum().backward()
    _assert_same_grads(model, ref, rtol=1e-3, atol=1e-5)
