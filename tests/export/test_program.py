"""torch.export of every model, with a dynamic batch and image size."""

from __future__ import annotations

import pytest
import torch
from helpers import randomize_norms, rel_error

import adaptconv
from adaptconv.export import export_program, input_ranges

MODELS = adaptconv.list_models()
AGGREGATE = torch.ops.adaptconv.involution_aggregate.default


@pytest.mark.parametrize("name", MODELS)
def test_every_model_exports_with_a_dynamic_batch(name):
    x = torch.randn(3, 3, 64, 64)  # not the tracing batch (2): the batch must really be dynamic
    model = randomize_norms(adaptconv.create_model(name, num_classes=10), x)
    program = export_program(model, (64, 64), dynamic="batch")  # symbolic sizes: rednet26 and the ONNX tests
    ranges = input_ranges(program)
    assert ranges["batch"] == (1, None) and ranges["channels"] == (3, 3) and ranges["height"] == (64, 64)
    # The aggregation stays one custom op in the program (so faster kernels apply), one per involution.
    n_ops = sum(node.target is AGGREGATE for node in program.graph.nodes)
    assert n_ops == sum(isinstance(m, adaptconv.Involution2d) for m in model.modules())
    with torch.no_grad():
        assert rel_error(program.module()(x), model(x)) < 1e-6


def test_rednet_program_is_dynamic_in_image_size():
    model = randomize_norms(adaptconv.create_model("rednet26", num_classes=10), torch.randn(2, 3, 64, 64))
    program = export_program(model, (64, 64))
    assert input_ranges(program)["height"][1] is None and input_ranges(program)["width"][1] is None
    x = torch.randn(1, 3, 47, 90)  # odd and non-square: the ceil-mode kernel pooling of the involutions
    with torch.no_grad():
        assert rel_error(program.module()(x), model(x)) < 1e-6


def test_static_export():
    model = adaptconv.create_model("rednet26", num_classes=4)
    ranges = input_ranges(export_program(model, (40, 48), dynamic=False))
    assert ranges == {"batch": (2, 2), "channels": (3, 3), "height": (40, 40), "width": (48, 48)}
