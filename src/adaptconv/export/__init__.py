"""Export of the models: ONNX (standard operators only) and torch.export programs.

``export_model('rednet50', 'onnx')`` is what ``adaptconv export`` runs; ``export_program`` and ``save_onnx`` are
the two steps, for models built by hand.
"""

from .exporter import FORMATS, ExportResult, export_model
from .onnx_export import DEFAULT_OPSET, decompose_custom_ops, reference_decompositions, save_onnx
from .program import export_program, input_ranges

__all__ = [
    "DEFAULT_OPSET",
    "FORMATS",
    "ExportResult",
    "decompose_custom_ops",
    "export_model",
    "export_program",
    "input_ranges",
    "reference_decompositions",
    "save_onnx",
]
