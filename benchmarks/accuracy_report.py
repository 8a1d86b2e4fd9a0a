"""The accuracy study's tables and plot, generated from its records: docs/accuracy.md and docs/accuracy_curves.png.

    python -m benchmarks.accuracy_report [--results DIR] [--doc FILE] [--plot FILE]

Reads every record of benchmarks/results/accuracy/ (``python -m benchmarks.accuracy``), groups the runs into studies
(data set, recipe, epochs) and, inside a study, by their role, model and the train flags they add to the recipe
(``--lr 0.2``, ``--model-kwargs pooling_r=2``), and writes per group the mean ± sample standard deviation over its
seeds, the parameters and multiply-accumulates at the run's input size, the training img/s and the GPU minutes;
then the planned runs that have no record yet (:data:`PLAN`). A run's role is its record's ``role``; records written
before there was one are the anchor when they add no flag to the recipe, else a diagnosis.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import flags, record
from .accuracy import RESULTS, ROLES

ROOT = Path(__file__).resolve().parents[1]
DOC, PLOT = ROOT / "docs" / "accuracy.md", ROOT / "docs" / "accuracy_curves.png"
#: the train flags that name the study rather than a change to its recipe
STUDY_FLAGS = ("--dataset", "--recipe", "--epochs")

#: data sets by the name of their file: title, classes, image side
DATASETS = {
    "cifar10": ("CIFAR-10", 10, 32),
    "imagenette": ("Imagenette", 10, 96),
}
#: what each recipe's anchor is held against (issue 19)
ANCHOR_TARGETS = {
    "cifar": "the published figure for this recipe (ResNet-18, lossless CIFAR-10, 80 epochs) is 95.3-95.6% single "
    "view; the study asks for at least 94.5%",
    "imagenette": "fast.ai's Imagenette leaderboard reaches 91.1-91.6% at 128 px in 20 epochs (xresnet50, tuned "
    "recipe, 224-320 px source images); the study asks for at least 85% from ResNet-50",
}
COMPARISON_MODELS = ("resnet26", "rednet26", "resnet50", "scnet50", "rednet50")
#: the papers' claims the comparison tests: (model, its ResNet, the claim as published)
CLAIMS = (
    ("scnet50", "resnet50", "SCNet-50 is more accurate than ResNet-50 (ImageNet top-1 77.81 vs 76.1; Liu et al., "
     "CVPR 2020)"),
    ("rednet50", "resnet50", "RedNet-50 is more accurate than ResNet-50 with 34% fewer MACs (ImageNet top-1 78.35; "
     "Li et al., CVPR 2021)"),
    ("rednet26", "resnet26", "RedNet-26 is more accurate than ResNet-26 with fewer MACs (Li et al., CVPR 2021)"),
)  # fmt: skip
#: a difference counts when it exceeds this many standard errors of the difference of the two means
SIGNIFICANT_SE = 2.0


@dataclass(frozen=True)
class Planned:
    """Runs the study plans: ``change`` the flags they add to the recipe (None: any)."""

    role: str
    dataset: str
    recipe: str
    epochs: int
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    change: str | None = None


_SC = "--model-kwargs "
#: the runs the study plans (issue 19); what has no record yet is listed in the report
PLAN = (
    *(Planned("anchor", "imagenette2_96px_q85", "imagenette", 20, ("resnet50",), (0,), f"--lr {lr}")
      for lr in (0.2, 0.4, 0.8)),
    Planned("comparison", "cifar10_jpeg_q75", "cifar", 30, COMPARISON_MODELS, (0, 1, 2)),
    Planned("comparison", "imagenette2_96px_q85", "imagenette", 20, COMPARISON_MODELS, (0, 1, 2)),
    *(Planned("ablation", "cifar10_jpeg_q75", "cifar", 30, ("scnet50",), (0,), _SC + kw)
      for kw in ("pooling_r=2", "pooling_r=8", "calibration_pooling=max", "calibration_upsampling=bilinear",
                 "calibration_gate_identity=False")),
    *(Planned("ablation", "cifar10_jpeg_q75", "cifar", 30, ("rednet26",), (0,), _SC + kw)
      for kw in ("kernel_size=3", "kernel_size=5", "group_channels=8", "group_channels=32")),
)  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One record of ``benchmarks/accuracy.py``, as the report sees it."""

    file: str
    role: str
    dataset: str  # the data file's name, without .npz
    recipe: str
    epochs: int
    change: str  # the train flags beyond the study's
    model: str
    seed: int
    settings: dict
    top1: float
    top5: float
    img_per_s: float | None
    gpu_minutes: float | None
    device: str
    curve: tuple[float, ...]  # validation top-1 per epoch

    @property
    def study(self) -> tuple[str, str, int]:
        return self.dataset, self.recipe, self.epochs


def split_flags(train_args: list[str]) -> tuple[dict[str, str], str]:
    """The study's flags (``--dataset``, ``--recipe``, ``--epochs``: their values) and the other flags, as typed."""
    study, rest, args = {}, [], [a for a in train_args if a != "--"]
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if name in STUDY_FLAGS:
            study[name], i = (value, i + 1) if eq else (args[i + 1], i + 2)
        else:
            rest.append(args[i])
            i += 1
    return study, " ".join(rest)


def load_run(path: Path) -> Run:
    """The record at ``path`` as a :class:`Run`."""
    rec = record.load(path)
    study, change = split_flags(rec["options"]["train_args"])
    settings = rec["settings"]
    return Run(
        file=path.name, role=rec.get("role") or ("diagnosis" if change else "anchor"),
        dataset=Path(study.get("--dataset", "embedded").removeprefix("npz:")).stem, recipe=settings["recipe"] or "",
        epochs=int(settings["epochs"]), change=change, model=rec["model"], seed=rec["seed"], settings=settings,
        top1=rec["final_top1"], top5=rec["final_top5"], img_per_s=rec.get("train_img_per_s"),
        gpu_minutes=rec.get("gpu_minutes"), device=rec["device"], curve=tuple(r["top1"] for r in rec["rows"]),
    )  # fmt: skip


def load_runs(results: Path = RESULTS) -> list[Run]:
    return [load_run(p) for p in sorted(Path(results).glob("*.json"))]


def dataset_info(dataset: str) -> tuple[str, int, int]:
    """Title, classes and image side of a data file's name (``cifar10_jpeg_q75``: CIFAR-10, 10, 32)."""
    key = next((k for k in DATASETS if dataset.startswith(k)), None)
    if key is None:
        raise ValueError(f"unknown data set {dataset!r}: add it to DATASETS")
    return DATASETS[key]


@cache
def complexity(arch: str, stem: str, width: float, kwargs: str, classes: int, side: int) -> tuple[int, int]:
    """Parameters and MACs of one model at ``side`` x ``side`` (built on the meta device: no memory, no time)."""
    import torch

    from adaptconv.engine.config import TrainConfig
    from adaptconv.engine.setup import build_model
    from adaptconv.models.complexity import count_macs, count_params

    cfg = TrainConfig(arch=arch, stem=stem, width=width, model_kwargs=json.loads(kwargs) or None)
    with torch.device("meta"):
        model = build_model(cfg, classes, 3)
    return count_params(model), count_macs(model, (side, side))


def run_complexity(run: Run) -> tuple[int, int]:
    s = run.settings
    _, classes, side = dataset_info(run.dataset)
    kwargs = json.dumps(s.get("model_kwargs") or {}, sort_keys=True)
    return complexity(s["arch"], s.get("stem") or "imagenet", s.get("width") or 1.0, kwargs,
                      s.get("num_classes") or classes, s.get("img_size") or side)  # fmt: skip


def mean_std(values: list[float], digits: int = 2) -> str:
    """'mean ± sample std' (the mean alone for one value)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def groups(runs: list[Run]) -> dict[tuple, list[Run]]:
    """Runs by (role, study, model, change), seeds in order."""
    out: dict[tuple, list[Run]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: r.seed):
        out[(r.role, r.study, r.model, r.change)].append(r)
    return dict(out)


def _model_order(model: str) -> tuple:
    return (COMPARISON_MODELS.index(model), "") if model in COMPARISON_MODELS else (len(COMPARISON_MODELS), model)


def table(runs: list[Run], baseline: bool = False, reference: str | None = None) -> str:
    """One row per group of runs: seeds, top-1 and top-5 mean ± std, (with ``baseline``: the top-1 difference from
    the ResNet of the same depth), parameters, MACs, training img/s, GPU minutes a run. Runs of the role
    ``reference`` are marked as the reference of the others."""
    rows = []
    for (_, _, model, change), rs in sorted(groups(runs).items(), key=lambda kv: (_model_order(kv[0][2]), kv[0][3])):
        params, macs = run_complexity(rs[0])
        rates = [r.img_per_s for r in rs if r.img_per_s]
        minutes = [r.gpu_minutes for r in rs if r.gpu_minutes is not None]
        label = change or ("recipe (the comparison's seed 0)" if rs[0].role == reference else "recipe")
        row = [model, label, ", ".join(str(r.seed) for r in rs), mean_std([r.top1 for r in rs]),
               mean_std([r.top5 for r in rs])]  # fmt: skip
        if baseline:
            resnet = "resnet" + model.lstrip("abcdefghijklmnopqrstuvwxyz")
            base = [r.top1 for r in runs if r.model == resnet and r.change == change]
            gain = statistics.mean(r.top1 for r in rs) - statistics.mean(base) if base and model != resnet else None
            row.append("" if gain is None else f"{gain:+.2f}")
        row += [f"{params / 1e6:.2f} M", f"{macs / 1e9:.3f} G", f"{statistics.mean(rates):,.0f}" if rates else "",
                f"{statistics.mean(minutes):.2f}" if minutes else ""]  # fmt: skip
        rows.append(row)
    headers = ["model", "flags beyond the recipe", "seeds", "top-1 (%)", "top-5 (%)"]
    headers += ["top-1 vs ResNet"] if baseline else []
    return record.markdown_table(headers + ["params", "MACs", "train img/s", "GPU-min a run"], rows)


def study_heading(study: tuple[str, str, int], runs: list[Run]) -> str:
    dataset, recipe, epochs = study
    title, _, side = dataset_info(dataset)
    size = runs[0].settings.get("img_size") or side
    devices = ", ".join(sorted({r.device for r in runs}))
    minutes = sum(r.gpu_minutes or 0 for r in runs)
    count = f"{len(runs)} run{'s' if len(runs) > 1 else ''}"
    return (f"### {title} (`{dataset}`), `--recipe {recipe}`, {epochs} epochs, {size} px\n\n"
            f"{count} on {devices}, {minutes:.1f} GPU-minutes in all.")  # fmt: skip


def section(runs: list[Run], role: str) -> list[str]:
    """The tables of one role's runs, a study each; an ablation's beside its model's seed 0 of the comparison (the
    official options)."""
    out = []
    for study in sorted({r.study for r in runs if r.role == role}):
        chosen = [r for r in runs if r.role == role and r.study == study]
        out += [study_heading(study, chosen), ""]
        if role == "ablation":
            models = {r.model for r in chosen}
            chosen += [r for r in runs if r.role == "comparison" and r.study == study and r.model in models
                       and r.seed == 0 and not r.change]  # fmt: skip
        out += [
            table(chosen, baseline=role == "comparison", reference="comparison" if role == "ablation" else None),
            "",
        ]
        if role == "anchor" and study[1] in ANCHOR_TARGETS:
            out += [f"Target: {ANCHOR_TARGETS[study[1]]}.", ""]
    return out


def verdict(model: list[float], resnet: list[float]) -> str:
    """Whether ``model``'s top-1 values (one per seed) beat ``resnet``'s: the difference of the means against
    :data:`SIGNIFICANT_SE` standard errors of it (sample variances over the seeds; needs two seeds a side)."""
    gain = statistics.mean(model) - statistics.mean(resnet)
    if min(len(model), len(resnet)) < 2:
        return f"{gain:+.2f} points with one seed: not decided yet"
    se = (statistics.variance(model) / len(model) + statistics.variance(resnet) / len(resnet)) ** 0.5
    told = f"{gain:+.2f} ± {se:.2f} points (standard error over {len(model)} and {len(resnet)} seeds)"
    if gain > SIGNIFICANT_SE * se:
        return f"holds at this scale: {told}"
    if gain < -SIGNIFICANT_SE * se:
        return f"does not hold, the ResNet is more accurate: {told}"
    return f"no difference beyond the seed spread: {told}"


def claims(runs: list[Run]) -> list[str]:
    """One line per paper claim and comparison study: the measured top-1 difference, the MACs ratio, the verdict."""
    lines = []
    for study in sorted({r.study for r in runs if r.role == "comparison"}):
        chosen = [r for r in runs if r.role == "comparison" and r.study == study and not r.change]
        title = f"{dataset_info(study[0])[0]}, {study[2]} epochs"
        for model, resnet, claim in CLAIMS:
            ours = [r for r in chosen if r.model == model]
            base = [r for r in chosen if r.model == resnet]
            if not ours or not base:
                continue
            macs = run_complexity(ours[0])[1] / run_complexity(base[0])[1]
            result = verdict([r.top1 for r in ours], [r.top1 for r in base])
            lines.append(f"- {title}: {claim}. Here: {result}; MACs {macs:.2f}x the ResNet's.")
    return lines


def missing(runs: list[Run]) -> list[str]:
    """The planned runs without a record, one line per planned group."""
    have = {(r.role, r.study, r.model, r.seed, r.change) for r in runs}
    lines = []
    for p in PLAN:
        study = (p.dataset, p.recipe, p.epochs)
        for model in p.models:
            done = {h[3] for h in have if h[:3] == (p.role, study, model) and p.change in (None, h[4])}
            seeds = [s for s in p.seeds if s not in done]
            if seeds:
                change = f" `{p.change}`" if p.change else ""
                lines.append(f"- {p.role}: {model}{change} on `{p.dataset}`, `--recipe {p.recipe}`, {p.epochs} "
                             f"epochs: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}")  # fmt: skip
    return lines


def render(runs: list[Run], plot_name: str = PLOT.name) -> str:
    """The whole of docs/accuracy.md."""
    from adaptconv.models.complexity import MACS_COUNTED

    out = [
        "# Accuracy study: SCNet and RedNet against ResNet at small scale",
        "",
        "Generated by `python -m benchmarks.accuracy_report` from the records in `benchmarks/results/accuracy/` "
        "(written by `python -m benchmarks.accuracy`); do not edit by hand. Top-1 and top-5 are single-view, at the "
        "last epoch, as mean ± sample standard deviation over the seeds listed (one seed: the value alone). MACs "
        f"at the run's input size count {MACS_COUNTED}. GPU minutes are a run's wall time, start-up and evaluation "
        "included.",
        "",
        f"![validation top-1 per epoch, mean over seeds]({plot_name})",
        "",
    ]
    titles = {"anchor": "Anchors: the recipe against published figures",
              "diagnosis": "Diagnosis: what the anchor's gap comes from",
              "comparison": "Comparison: the same recipe for every model, several seeds",
              "ablation": "Ablations (CIFAR-10, one seed each: differences within the seed spread of the comparison "
                          "are not findings)"}  # fmt: skip
    for role in ROLES:
        if any(r.role == role for r in runs):
            out += [f"## {titles[role]}", "", *section(runs, role)]
    found = claims(runs)
    if found:
        out += ["## The papers' claims at this scale", "",
                f"A claim holds where the top-1 gain exceeds {SIGNIFICANT_SE:g} standard errors of the difference "
                "of the means over the seeds.", "", *found, ""]  # fmt: skip
    todo = missing(runs)
    out += ["## Planned runs without a record yet", "", *(todo or ["None: the study is complete."]), ""]
    return "\n".join(out)


def plot(runs: list[Run], path: Path) -> None:
    """Validation top-1 per epoch, mean over seeds, one line per model; one panel per anchor or comparison study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in runs if r.role in ("anchor", "comparison")]
    panels = sorted({(r.role, r.study) for r in shown})
    cols = min(2, max(1, len(panels)))
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (role, study) in zip(axes.flat, panels, strict=False):
        chosen = [r for r in shown if (r.role, r.study) == (role, study)]
        for (_, _, model, change), rs in sorted(groups(chosen).items(), key=lambda kv: _model_order(kv[0][2])):
            curves = [r.curve for r in rs if len(r.curve) == len(rs[0].curve)]
            mean = [statistics.mean(values) for values in zip(*curves, strict=True)]
            label = f"{model} {change}".strip() + f" (n={len(curves)})"
            ax.plot(range(1, len(mean) + 1), mean, label=label)
        ax.set(title=f"{role}: {dataset_info(study[0])[0]}, {study[1]}, {study[2]} epochs", xlabel="epoch",
               ylabel="validation top-1 (%)")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parser() -> argparse.ArgumentParser:
    p = flags.parser("accuracy_report", __doc__, results=False)
    p.add_argument("--results", type=Path, default=RESULTS, metavar="DIR", help="the records to read")
    p.add_argument("--doc", type=Path, default=DOC, metavar="FILE", help="the Markdown file to write")
    p.add_argument("--plot", type=Path, default=PLOT, metavar="FILE", help="the PNG to write (beside --doc)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    runs = load_runs(args.results)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render(runs, args.plot.name))
    plot(runs, args.plot)
    print(f"{len(runs)} runs -> {args.doc}, {args.plot}")


if __name__ == "__main__":
    main()
