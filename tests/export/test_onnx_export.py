"""ONNX export: the involution through its unfold formulation, ONNX Runtime against PyTorch, dynamic sizes."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import damp_residuals, randomize_norms, rel_error

import adaptconv
from adaptconv.export import decompose_custom_ops, export_model, export_program, save_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

AGGREGATE = torch.ops.adaptconv.involution_aggregate.default


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


class _Involution(torch.nn.Module):
    """Two involutions, one strided and dilated, with random kernel biases: every branch of the formulation."""

    def __init__(self) -> None:
        super().__init__()
        self.a = adaptconv.Involution2d(32, kernel_size=3, stride=2, dilation=2, group_channels=8)
        self.b = adaptconv.Involution2d(32, kernel_size=7)
        for m in (self.a, self.b):
            torch.nn.init.normal_(m.span.bias)

    def forward(self, x):
        return self.b(self.a(x))


def test_decomposition_replaces_the_op_and_keeps_the_values(tmp_path):
    model = _Involution().eval()
    program = export_program(model, (20, 20), in_chans=32)
    assert sum(n.target is AGGREGATE for n in program.graph.nodes) == 2
    plain = decompose_custom_ops(program)
    assert not any("adaptconv" in str(n.target) for n in plain.graph.nodes)
    session = _session(save_onnx(program, tmp_path / "inv.onnx"))
    for shape in [(2, 32, 20, 20), (1, 32, 17, 26), (3, 32, 9, 8)]:
        x = torch.randn(shape)
        with torch.no_grad():
            ref = model(x)
            assert rel_error(plain.module()(x), ref) < 1e-6, shape
        assert rel_error(_run(session, x), ref) < 1e-5, shape


# rednet26 and scnet50_v1d hold every block, stem and pooling type (scnet50 only adds a 7x7 conv stem).
@pytest.mark.parametrize("name", ["rednet26", "scnet50_v1d"])
def test_onnx_runtime_matches_pytorch(name, tmp_path):
    """Weights through --pretrained; ORT at other batch sizes and image sizes than the tracing one (2, 112x112)."""
    model = damp_residuals(randomize_norms(adaptconv.create_model(name), torch.randn(4, 3, 112, 112)))
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    result = export_model(name, "onnx", tmp_path / f"{name}.onnx", (112, 112), str(tmp_path / "weights.pth"))
    # SCNet's calibration pool changes branch on maps under 4x4: the graph traced at 112 px holds from 97 px.
    size_min = 97 if name.startswith("scnet") else 2
    assert result.ranges["height"] == result.ranges["width"] == (size_min, None)

    proto = onnx.load(result.path)
    assert proto.opset_import[0].version >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # batch, H, W symbolic; C fixed
    meta = {p.key: json.loads(p.value) for p in proto.metadata_props if p.key in ("model", "input_ranges")}
    assert meta == {"model": name, "input_ranges": {k: list(v) for k, v in result.ranges.items()}}

    session = _session(result.path)
    for shape in [(2, 3, 112, 112), (3, 3, 97, 131), (1, 3, 128, 100)]:
        x = torch.randn(shape)
        with torch.no_grad():
            ref = model(x)
        assert rel_error(_run(session, x), ref) <= 1e-4, shape
