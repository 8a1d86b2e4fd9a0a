"""``adaptconv <command>``: thin argument parsing over the library.

Commands:
  train [DIR]               train a model (no DIR: the embedded Fashion-MNIST subset, in minutes on a CPU)
  validate [DIR]            top-1/top-5/loss/throughput of a checkpoint or pretrained weights
  plot RUN_DIR              PNG of a run's loss, accuracy and learning-rate curves
  list                      the models, with their published accuracy and where their weights are
  info [MODEL ...]          parameters and multiply-accumulates at an input size, beside the paper's figures
  export MODEL              an ONNX file or a torch.export program, with dynamic batch and image size
  benchmark [MODEL ...]     img/s, ms/step and peak memory against a ResNet baseline measured in the same run
  visualize [IMAGE]         pictures: Grad-CAM, SC-Conv calibration gates, involution kernels (no IMAGE: a cat)
"""

from __future__ import annotations

import argparse
import re
import sys

import torch

from ..models import create_model, get_pretrained_config, list_models
from ..models.complexity import count_macs, count_params
from .benchmark import add_benchmark_parser
from .train import add_train_parser, add_validate_parser, to_config


def _fmt(value, spec: str = "", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for name in list_models(args.pattern):
        c = get_pretrained_config(name)
        weights = "download" if c.url else ("manual download" if c.released else "none released")
        rows.append([name, _fmt(c.paper_top1, ".2f"), _fmt(c.paper_top5, ".2f"), weights])
    print(_table(rows, ["model", "paper top-1", "paper top-5", "official weights"]))
    return 0


def model_info(name: str, input_size: tuple[int, int]) -> dict:
    """Parameters and MACs of ``name`` at ``input_size``, with the paper's figures."""
    with torch.device("meta"):
        model = create_model(name)
    c = get_pretrained_config(name)
    return dict(
        model=name,
        params=count_params(model),
        macs=count_macs(model, input_size),
        paper_params_m=c.paper_params_m,
        paper_flops=c.paper_flops,
        paper_top1=c.paper_top1,
        paper_top5=c.paper_top5,
    )


def cmd_info(args: argparse.Namespace) -> int:
    names = args.models or list_models()
    unknown = [n for n in names if n not in list_models()]
    if unknown:
        print(f"adaptconv info: unknown model(s) {', '.join(unknown)}; see 'adaptconv list'", file=sys.stderr)
        return 2
    h, w = args.input_size
    if h < 32 or w < 32:
        print("adaptconv info: --input-size must be at least 32 32", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        i = model_info(name, (h, w))
        rows.append([
            name, f"{i['params'] / 1e6:.2f}M", f"{i['macs'] / 1e9:.3f}G", _fmt(i["paper_params_m"], ".2f"),
            _fmt(i["paper_flops"]), _fmt(i["paper_top1"], ".2f"), _fmt(i["paper_top5"], ".2f"),
        ])  # fmt: skip
    header = ["model", "params", f"MACs@{h}x{w}", "paper params (M)", "paper FLOPs", "top-1", "top-5"]
    print(_table(rows, header))
    print("\nMACs: convolutions, linear layers and involution aggregation (K*K*C*H*W); no BN, activations, pooling.")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..engine import train

    train(to_config(args))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..engine import validate

    if not args.checkpoint and not args.pretrained:
        print("adaptconv validate: give --checkpoint PATH or --pretrained [PATH|URL]", file=sys.stderr)
        return 2
    validate(to_config(args))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ..engine.plot import plot_run

    try:
        path = plot_run(args.run_dir, args.output)
    except (FileNotFoundError, ValueError, ImportError) as e:  # no run there, no epoch yet, no matplotlib
        print(f"adaptconv plot: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..export import export_model  # lazy: torch.export and ONNX machinery only when exporting

    # "official" names the official weights, like pretrained=True; anything else is a path or URL.
    pretrained = True if args.pretrained == "official" else (args.pretrained or False)
    try:
        result = export_model(args.model, args.format, args.output, args.input_size, pretrained, args.opset)
    except (ValueError, ImportError) as e:  # bad arguments, unreadable weights (CheckpointError), missing packages
        print(f"adaptconv export: {e}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{k} {lo}..{'' if hi is None else hi}" for k, (lo, hi) in result.ranges.items() if lo != hi)
    print(f"wrote {result.path} (dynamic: {sizes})")
    return 0


def _add_export_parser(sub) -> None:
    from ..export.exporter import FORMATS
    from ..export.onnx_export import DEFAULT_OPSET

    p = sub.add_parser("export", help="export a model to ONNX or a torch.export program (.pt2)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--format", choices=list(FORMATS), default="onnx", help="default: onnx")
    p.add_argument("--output", "-o", metavar="PATH", help="default: MODEL.onnx or MODEL.pt2")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"), help="tracing size; default 224 224")
    p.add_argument("--pretrained", metavar="PATH|URL|official", help="weights to load; default: random init")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, >= 17 (default {DEFAULT_OPSET})")
    p.set_defaults(func=cmd_export)


def cmd_visualize(args: argparse.Namespace) -> int:
    from ..visualize import VisualizeError, visualize

    try:
        made = visualize(
            args.image, args.model, args.pretrained, args.kind, args.block, args.pixels, args.image_size, args.output,
            args.class_index, args.kernel_map,
        )  # fmt: skip
    except (VisualizeError, ImportError) as e:  # bad image, block, pixel or kind; missing packages
        print(f"adaptconv visualize: error: {e}", file=sys.stderr)
        return 2
    for note in made.notes:
        print(f"note: {note}")
    if made.top5:
        print("top-5 classes:")
        for index, name, probability in made.top5:
            print(f"  {100 * probability:6.2f}%  {index:4d}  {name}")
    for path in made.files:
        print(f"wrote {path}")
    return 0


def _pixel(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y (two integers), got {text!r}") from None
    return x, y


def _add_visualize_parser(sub) -> None:
    from ..visualize.pictures import KINDS

    p = sub.add_parser("visualize", help="pictures of a model on an image: Grad-CAM, calibration gates, involution")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="default: a photo shipped with the package (a cat, CC0)")
    p.add_argument("--model", default="scnet50", help="an adaptconv model (default scnet50)")
    p.add_argument(
        "--pretrained", metavar="PATH|URL|official|none",
        help="weights; default: the official ones if already downloaded, else random (nothing is downloaded)",
    )  # fmt: skip
    p.add_argument(
        "--kind", choices=[*KINDS, "all"], default="all",
        help="picture(s); default all that apply: gradcam, plus calibration (scnet*) or involution (rednet*)",
    )  # fmt: skip
    p.add_argument("--block", help="block whose gates or kernels to draw, e.g. layer3.1 (default: last of layer2)")
    p.add_argument(
        "--pixels", nargs="+", type=_pixel, metavar="X,Y",
        help="pixels of the model input whose involution kernels to draw (default: centre and two quarter points)",
    )  # fmt: skip
    p.add_argument(
        "--kernel-map", choices=["norm", "centre"], default="norm",
        help="involution maps per group: each kernel's L2 norm (default) or its centre tap",
    )  # fmt: skip
    p.add_argument(
        "--image-size", type=int, default=224, metavar="S", help="short side of the model input, a multiple of 32"
    )
    p.add_argument(
        "--class", dest="class_index", type=int, metavar="N", help="class Grad-CAM explains (default: top-1)"
    )
    p.add_argument("--output", "-o", default="pictures", metavar="DIR", help="folder for the PNGs (default pictures)")
    p.set_defaults(func=cmd_visualize)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adaptconv", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub).set_defaults(func=cmd_train)
    add_validate_parser(sub).set_defaults(func=cmd_validate)
    p = sub.add_parser("plot", help="draw a run's curves from its summary.csv")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--output", default=None, help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(func=cmd_plot)
    p = sub.add_parser("list", help="list the models")
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'rednet*'")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("info", help="parameters and MACs of models (all if none named)")
    p.add_argument("models", nargs="*", metavar="MODEL")
    p.add_argument("--input-size", nargs=2, type=int, default=(224, 224), metavar=("H", "W"))
    p.set_defaults(func=cmd_info)
    _add_export_parser(sub)
    add_benchmark_parser(sub)
    _add_visualize_parser(sub)
    return parser


def _last_line(e: BaseException) -> str:
    """The message of an error, also one re-raised from a worker process (whose text ends with the worker's
    traceback: its last line is 'module.ErrorName: message')."""
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    return re.sub(r"^[\w.]*Error: ", "", lines[-1])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..engine import UserError

    try:
        return args.func(args)
    except UserError as e:
        print(f"adaptconv {args.command}: error: {_last_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a spawned process re-raises our errors as another type, with their traceback
        names = {c.__name__ for base in UserError for c in [base, *_subclasses(base)]}
        last = str(e).strip().splitlines()[-1] if str(e).strip() else ""
        if re.match(rf"^[\w.]*\b({'|'.join(names)}): ", last):
            print(f"adaptconv {args.command}: error: {_last_line(e)}", file=sys.stderr)
            return 1
        raise


def _subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in [sub, *_subclasses(sub)]]


if __name__ == "__main__":
    sys.exit(main())
