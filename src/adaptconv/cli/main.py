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
import sys
from collections.abc import Callable

from .arguments import add_pretrained_argument

# Only the chosen command's arguments are set up, and each command imports what it needs when it runs:
# 'adaptconv --help' and 'adaptconv list' import neither timm nor the models (see benchmarks/startup_time.py).


def _fmt(value, spec: str = "", missing: str = "-") -> str:
    return missing if value is None else format(value, spec)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def cmd_list(args: argparse.Namespace) -> int:
    from fnmatch import fnmatch

    from ..models.pretrained import PRETRAINED  # the configuration table alone: no timm, no models

    rows = []
    for name, c in PRETRAINED.items():
        if not fnmatch(name, args.pattern):
            continue
        weights = "download" if c.url else ("manual download" if c.released else "none released")
        rows.append([name, _fmt(c.paper_top1, ".2f"), _fmt(c.paper_top5, ".2f"), weights])
    print(_table(rows, ["model", "paper top-1", "paper top-5", "official weights"]))
    return 0


def model_info(name: str, input_size: tuple[int, int]) -> dict:
    """Parameters and MACs of ``name`` at ``input_size``, with the paper's figures."""
    import torch

    from ..models import create_model, get_pretrained_config
    from ..models.complexity import count_macs, count_params

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
    from ..models import list_models

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
    from .train import to_config

    train(to_config(args))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..engine import validate
    from .train import to_config

    if not args.checkpoint and not args.pretrained:
        print("adaptconv validate: error: give --checkpoint PATH or --pretrained [official|PATH|URL]", file=sys.stderr)
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

    try:
        result = export_model(args.model, args.format, args.output, args.input_size, args.pretrained or False,
                              args.opset)  # fmt: skip
    except (ValueError, ImportError) as e:  # bad arguments, unreadable weights (CheckpointError), missing packages
        print(f"adaptconv export: {e}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{k} {lo}..{'' if hi is None else hi}" for k, (lo, hi) in result.ranges.items() if lo != hi)
    print(f"wrote {result.path} (dynamic: {sizes})")
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    from ..export.exporter import FORMATS
    from ..export.onnx_export import DEFAULT_OPSET

    p.add_argument("model", metavar="MODEL")
    p.add_argument("--format", choices=list(FORMATS), default="onnx", help="default: onnx")
    p.add_argument("--output", "-o", metavar="PATH", help="default: MODEL.onnx or MODEL.pt2")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"), help="tracing size; default 224 224")
    add_pretrained_argument(p)
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, >= 17 (default {DEFAULT_OPSET})")


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


def _visualize_arguments(p: argparse.ArgumentParser) -> None:
    from ..visualize.pictures import KINDS

    p.add_argument("image", nargs="?", metavar="IMAGE", help="default: a photo shipped with the package (a cat, CC0)")
    p.add_argument("--model", default="scnet50", help="an adaptconv model (default scnet50)")
    add_pretrained_argument(p)
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


def _plot_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--output", default=None, help="PNG path (default RUN_DIR/curves.png)")


def _list_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'rednet*'")


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("models", nargs="*", metavar="MODEL")
    p.add_argument("--input-size", nargs=2, type=int, default=(224, 224), metavar=("H", "W"))


def _train_arguments(p: argparse.ArgumentParser) -> None:
    from .train import train_arguments

    train_arguments(p)


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    from .train import validate_arguments

    validate_arguments(p)


def _benchmark_arguments(p: argparse.ArgumentParser) -> None:
    from .benchmark import benchmark_arguments

    benchmark_arguments(p)


def cmd_benchmark(args: argparse.Namespace) -> int:
    from .benchmark import cmd_benchmark

    return cmd_benchmark(args)


#: command -> (one-line help, description, function that adds its arguments, function that runs it)
COMMANDS: dict[str, tuple[str, str | None, Callable[[argparse.ArgumentParser], None], Callable]] = {
    "train": ("train a model (default: on the embedded data set)", "Train (or with -e evaluate) a classifier.",
              _train_arguments, cmd_train),
    "validate": ("evaluate a checkpoint or pretrained weights",
                 "Top-1, top-5, loss and throughput on a validation split.", _validate_arguments, cmd_validate),
    "plot": ("draw a run's curves from its summary.csv", None, _plot_arguments, cmd_plot),
    "list": ("list the models", None, _list_arguments, cmd_list),
    "info": ("parameters and MACs of models (all if none named)", None, _info_arguments, cmd_info),
    "export": ("export a model to ONNX or a torch.export program (.pt2)", None, _export_arguments, cmd_export),
    "benchmark": ("img/s, ms/step and peak memory of models against a ResNet baseline measured in the same run",
                  "Times each model and its baseline (timm's ResNet of the same depth, or --baseline) one after the "
                  "other in one process: median of --repeats steps after --warmup, cycling through --input-sets "
                  "batches. Defaults on a GPU: train at batch 128 and inference at 256, bf16, channels_last; on a "
                  "CPU: inference latency at batch 1 (a training step at batch 8), fp32. Results go to --output.",
                  _benchmark_arguments, cmd_benchmark),
    "visualize": ("pictures of a model on an image: Grad-CAM, calibration gates, involution", None,
                  _visualize_arguments, cmd_visualize),
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line and a pointer to ``--help`` (not the whole usage text)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``adaptconv`` parser. With ``argv``, only the command it names gets its arguments (the others, only
    their line in the list of commands), so that parsing imports nothing another command needs."""
    parser = _Parser(prog="adaptconv", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name, (help_, description, arguments, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=description or help_)
        if chosen is None or chosen == name:
            arguments(p)
            p.set_defaults(func=run)
    return parser


def user_message(e: BaseException) -> str | None:
    """The whole message of an error that is the user's to fix, without any traceback; ``None`` for other errors
    (bugs, which keep their traceback). An error raised in a data-loading worker or a spawned process reaches us
    with the worker's traceback in its text: the message is what follows the traceback's last frame."""
    from ..engine import user_errors

    names = {cls.__name__ for cls in user_errors()}
    text = str(e).strip()
    lines = text.splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith('  File "')]
    if frames:  # the re-raised text ends with 'module.ErrorName: message', after the frames' code lines
        rest = lines[frames[-1] + 1 :]
        while rest and (not rest[0].strip() or rest[0].startswith(" ")):
            rest = rest[1:]
        if not rest:
            return None
        error, _, first = rest[0].partition(": ")
        if error.rsplit(".", 1)[-1] not in names:
            return None
        return "\n".join([first, *rest[1:]]).strip()
    if isinstance(e, tuple(user_errors())):
        return text or type(e).__name__
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:
        message = user_message(e)
        if message is None:
            raise
        print(f"adaptconv {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
