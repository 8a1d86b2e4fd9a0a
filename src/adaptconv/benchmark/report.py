"""Writing benchmark results: JSON with the environment and every setting, a Markdown table, a plot of the ratios."""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write

__all__ = ["markdown", "plot_ratios", "write_json"]


def write_json(path: Path, environment: dict, options: dict, rows: list[dict], overwrite: bool = True) -> Path:
    """``{environment, options, rows}`` to ``path``, written atomically; ``overwrite=False`` refuses an existing
    file (``FileExistsError``)."""
    text = json.dumps(dict(environment=environment, options=options, rows=rows), indent=1)
    return atomic_write(path, lambda f: f.write(text.encode()), overwrite=overwrite)


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _mode(row: dict) -> str:
    return row["mode"] + (" folded" if row.get("fold") else "")  # rows of older files have no "fold"


def markdown(rows: list[dict], environment: dict) -> str:
    """One line per setting: the model's and the baseline's img/s, ms and peak memory, and the ratios."""
    headers = ["model", "task", "batch", "dtype", "layout", "mode", "img/s", "ms/step", "peak MiB", "baseline",
               "baseline img/s", "speed ×", "memory ×"]  # fmt: skip
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = [r["model"], r["task"], r["batch"], r["dtype"], r["layout"], _mode(r), _num(r["img_s"], ".1f"),
                 _num(r["ms"], ".2f"), _num(r["peak_mib"], ".0f"), r["baseline"], _num(r["baseline_img_s"], ".1f"),
                 _num(r["speed_ratio"], ".2f"), _num(r["memory_ratio"], ".2f")]  # fmt: skip
        if r["error"] or r["baseline_error"]:
            cells[6] = f"failed: {r['error'] or r['baseline_error']}"
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    env = environment
    versions = ", ".join(f"{k} {env[k]}" for k in ("torch", "triton", "timm", "cuda") if env.get(k))
    where = f"{env['device']} ({env['cpu_cores']} CPU cores, {env['torch_threads']} threads), {versions}"
    return f"Measured {env['date']} on {where}.\n\n" + "\n".join(lines) + "\n"


def plot_ratios(rows: list[dict], path: Path) -> Path:
    """Bar chart of the speed and memory ratios to the baseline, one pair of bars per setting (1 = the baseline)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("--plot needs matplotlib: pip install 'adaptconv[plot]'") from e
    done = [r for r in rows if r["speed_ratio"] is not None]
    labels = [f"{r['model']}\n{r['task']} b{r['batch']} {r['dtype']}\n{r['layout']} {_mode(r)}" for r in done]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(done) + 2), 4.5))
    xs = list(range(len(done)))
    memory = [r["memory_ratio"] for r in done]
    pairs = any(m is not None for m in memory)  # peak memory is measured on CUDA only
    width, shift = (0.4, 0.2) if pairs else (0.6, 0.0)
    bars = ax.bar([x - shift for x in xs], [r["speed_ratio"] for r in done], width, label="speed (img/s ÷ baseline's)")
    ax.bar_label(bars, fmt="%.2f", fontsize=7)
    if pairs:
        bars = ax.bar([x + shift for x in xs], [m or 0.0 for m in memory], width, label="peak memory ÷ baseline's")
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(xs, labels, fontsize=7)
    ax.set_ylabel("ratio to the baseline (ResNet)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
