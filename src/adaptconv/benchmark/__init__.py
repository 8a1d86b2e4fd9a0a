"""Speed and memory of models against a ResNet baseline measured in the same run (``adaptconv benchmark``)."""

from .harness import DTYPES, LAYOUTS, MODES, TASKS, Setting, baseline_for, measure, run, settings
from .report import markdown, plot_ratios, write_json
from .timing import environment, median_ms

__all__ = ["DTYPES", "LAYOUTS", "MODES", "TASKS", "Setting", "baseline_for", "environment", "markdown", "measure",
           "median_ms", "plot_ratios", "run", "settings", "write_json"]  # fmt: skip
