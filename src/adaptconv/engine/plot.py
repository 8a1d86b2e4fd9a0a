"""``adaptconv plot RUN_DIR``: the loss, accuracy and learning-rate curves of a run, from its ``summary.csv``."""

from __future__ import annotations

from pathlib import Path

from .loggers import read_summary

__all__ = ["plot_run"]


def plot_run(run_dir: str | Path, output: str | Path | None = None) -> Path:
    """Draw ``RUN_DIR/summary.csv`` into a PNG (default ``RUN_DIR/curves.png``) and return its path."""
    run_dir = Path(run_dir)
    summary = run_dir / "summary.csv"
    if not summary.is_file():
        raise FileNotFoundError(f"{summary} not found: give the --output folder of an 'adaptconv train' run")
    rows = read_summary(summary)
    if not rows:
        raise ValueError(f"{summary} has no finished epoch yet")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("adaptconv plot needs matplotlib: pip install 'adaptconv[plot]'") from e

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    series = [
        ("loss", [("train_loss", "train"), ("val_loss", "validation")]),
        ("accuracy (%)", [("top1", "top-1"), ("top5", "top-5"), ("ema_top1", "EMA top-1")]),
        ("learning rate", [("lr", "lr at epoch end")]),
    ]
    for ax, (label, keys) in zip(axes, series, strict=True):
        for key, name in keys:
            points = [(r["epoch"], r[key]) for r in rows if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    best = max(rows, key=lambda r: r.get("top1", float("-inf")))
    fig.suptitle(f"{run_dir.name}: {len(epochs)} epochs, best top-1 {best.get('top1', float('nan')):.2f}% "
                 f"(epoch {int(best['epoch'])})")  # fmt: skip
    out = Path(output) if output else run_dir / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
