"""TorchScript: every model scripts, directly and after ``torch.fx.symbolic_trace``, and gives the eager outputs."""

from __future__ import annotations

import copy
import io
import warnings

import pytest
import torch

import adaptconv


def script(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch.jit.script is deprecated in favour of torch.compile/export, not removed
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(module)


def outputs(model: torch.nn.Module, x: torch.Tensor, train: bool) -> list[torch.Tensor]:
    """The logits of ``model`` (a copy, so that batch norm's statistics start alike) and its buffers after the step
    (batch norm's running statistics: updated in training mode)."""
    model = copy.deepcopy(model).train(train)
    return [model(x), *(b for _, b in sorted(model.named_buffers()))]


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("name", adaptconv.list_models())
def test_scripted_models_give_the_eager_outputs(name, train):
    model = adaptconv.create_model(name, num_classes=10)
    x = torch.randn(2, 3, 64, 64)
    expected = outputs(model, x, train)
    for scripted in (script(copy.deepcopy(model)), script(torch.fx.symbolic_trace(copy.deepcopy(model)))):
        got = outputs(scripted, x, train)
        for a, b in zip(got, expected, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def ops_run(module: torch.nn.Module, x: torch.Tensor) -> set[str]:
    """The names of the operators ``module(x)`` runs (the profiler's events: they include TorchScript's calls)."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        module(x)
    return {e.name for e in prof.events()}


@pytest.mark.parametrize(
    "name, kwargs, runs, skips",
    [("rednet26", {}, "adaptconv::involution_aggregate", "adaptconv::involution_fused"),
     ("rednet26", {"fused_involution": True}, "adaptconv::involution_fused", "adaptconv::involution_aggregate"),
     # on a CPU the op's reference runs sigmoid inside it
     ("scnet50", {"fused_calibration": True}, "adaptconv::calibrate", None),
     ("scnet50", {"fused_calibration": False}, "aten::sigmoid", "adaptconv::calibrate")],
)  # fmt: skip
def test_scripted_models_run_the_chosen_ops_and_survive_save_and_load(name, kwargs, runs, skips):
    model = adaptconv.create_model(name, num_classes=10, **kwargs).eval()
    buffer = io.BytesIO()
    torch.jit.save(script(model), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(1, 3, 64, 64)
    ops = ops_run(loaded, x)
    assert runs in ops and (skips is None or skips not in ops)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_scripted_operators_alone():
    x = torch.randn(2, 32, 9, 11)
    for module in (adaptconv.Involution2d(32, stride=2), adaptconv.SelfCalibratedConv2d(32, stride=2)):
        module.eval()
        torch.testing.assert_close(script(module)(x), module(x), rtol=0, atol=0)
