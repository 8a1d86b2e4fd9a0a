"""Speed and memory of models against a ResNet baseline measured in the same run (``adaptconv benchmark``)."""

from .harness import DTYPES, LAYOUTS, MODES, TASKS, Setting, baseline_for, measure, run, settings
from .memory import saved_activation_bytes, saved_bytes_per_image
from .report import markdown, plot_ratios, write_json
from .timing import environment, median_ms

__all__ = ["DTYPES", "LAYOUTS", "MODES", "TASKS", "Setting", "baseline_for", "environment", "markdown", "measure",
           "median_ms", "plot_ratios", "run", "saved_activation_bytes", "saved_bytes_per_image",
           "settings", "write_json"]  # fmt: skip
