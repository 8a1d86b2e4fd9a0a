"""Arguments of ``adaptconv train`` and ``adaptconv validate``.

Every flag of the classic PyTorch ImageNet training script keeps its name and meaning (``DIR``, ``-a``, ``-j``,
``--epochs``, ``--start-epoch``, ``-b`` (total over the GPUs of a node), ``--lr``, ``--momentum``, ``--wd``, ``-p``,
``--resume``, ``-e``, ``--pretrained``, ``--world-size``, ``--rank``, ``--dist-url``, ``--dist-backend``, ``--seed``,
``--gpu``, ``--multiprocessing-distributed``); the rest are additions.
"""

from __future__ import annotations

import argparse
import ast

from ..engine.config import RECIPES, TrainConfig
from ..models.stems import STEMS
from .arguments import add_pretrained_argument, checked


def _key_value(text: str) -> tuple[str, object]:
    """'KEY=VALUE' -> (KEY, VALUE), VALUE read as a Python literal (True, 0.1, (1, 2)) or else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DIR", nargs="?", default=None,
                   help="ImageNet-style folder (DIR/train/<class>/*, DIR/val/<class>/*); none: --dataset or the "
                        "embedded Fashion-MNIST subset")  # fmt: skip
    p.add_argument("--dataset", default=None, help="'npz:PATH' (JPEG .npz layout) or 'embedded'")
    p.add_argument("-a", "--arch", metavar="ARCH", default=None, help="model name (adaptconv list, or any timm name)")
    p.add_argument("--width", type=checked("width"), default=None, help="multiplier of the stage widths (default 1)")
    p.add_argument("--model-kwargs", nargs="+", type=_key_value, default=None, metavar="KEY=VALUE",
                   help="more keyword arguments of the model, e.g. fused_involution=True recompute_stem=True "
                        "drop_path_rate=0.05")  # fmt: skip
    p.add_argument(
        "-j",
        "--workers",
        type=checked("workers"),
        default=None,
        metavar="N",
        help="data loading workers per node (default: 4, at most the CPU cores this process may use)",
    )
    p.add_argument("-b", "--batch-size", type=checked("batch_size"), default=None, metavar="N",
                   help="total batch size over all processes of a node")  # fmt: skip
    p.add_argument("--img-size", type=checked("img_size"), default=None,
                   help="input size (default: the model's, or the data's own for images of at most 64 px)")  # fmt: skip
    p.add_argument("--num-classes", type=checked("num_classes"), default=None,
                   help="default: the number of classes of the data")  # fmt: skip
    add_pretrained_argument(p)
    p.add_argument("--stem", choices=STEMS, default=None,
                   help="imagenet (the model's own, default) or cifar: the small-input stem (3x3 stride-1 conv, no "
                        "max-pool), for 32-64 px images; any ResNet-family model")  # fmt: skip
    p.add_argument("--device-data", action=argparse.BooleanOptionalAction, default=None,
                   help="decode the data set once, keep it on the training device and augment it there (in-memory "
                        "sets such as the .npz ones; training: resize, --translate, flip, --cutout)")  # fmt: skip
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="mixed precision")
    p.add_argument("--channels-last", action="store_true", default=None, help="NHWC memory format")
    p.add_argument("--skip-bad-images", action="store_true", default=None,
                   help="skip images that cannot be decoded (named in the summary)")  # fmt: skip
    p.add_argument("-p", "--print-freq", type=checked("print_freq"), default=None, metavar="N",
                   help="log every N steps (default 10)")  # fmt: skip
    p.add_argument("--seed", type=int, default=None, help="seed of every random generator (default 0)")
    p.add_argument("--gpu", type=int, default=None, help="GPU id to use (one process)")
    p.add_argument("--cpu", action="store_true", help="stay on the CPU even where a GPU is present")
    p.add_argument("--world-size", type=int, default=-1, help="number of nodes for distributed training")
    p.add_argument("--rank", type=int, default=-1, help="node rank for distributed training")
    p.add_argument("--dist-url", default="env://", help="URL used to set up distributed training")
    p.add_argument("--dist-backend", default=None, help="distributed backend (default: nccl on GPUs, gloo on CPU)")
    p.add_argument("--multiprocessing-distributed", action="store_true",
                   help="launch one process per GPU of this node (world size = GPUs x nodes)")  # fmt: skip
    p.add_argument("--nproc-per-node", type=int, default=None, metavar="N",
                   help="with --multiprocessing-distributed: processes of this node (default: one per GPU, 1 on "
                        "the CPU; any number of CPU processes, e.g. to try the distributed path)")  # fmt: skip


def train_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``adaptconv train``."""
    _data_args(p)
    p.add_argument("--epochs", type=checked("epochs"), default=None, metavar="N")
    p.add_argument("--start-epoch", type=checked("start_epoch"), default=None, metavar="N",
                   help="manual epoch number (useful on restarts)")  # fmt: skip
    p.add_argument("--lr", "--learning-rate", type=checked("lr"), default=None, dest="lr",
                   help="initial learning rate")  # fmt: skip
    p.add_argument("--momentum", type=checked("momentum"), default=None)
    p.add_argument("--wd", "--weight-decay", type=checked("weight_decay"), default=None, dest="weight_decay")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="continue a run from its checkpoint, with every setting it had (flags given again must "
                        "agree, except --epochs, -p, -j, --log, --checkpoint-every-steps, "
                        "--skip-bad-images)")  # fmt: skip
    p.add_argument("-e", "--evaluate", action="store_true", help="evaluate the model on the validation set and exit")
    p.add_argument("--recipe", choices=tuple(RECIPES), default=None, help="a paper's hyper-parameters")
    p.add_argument("--label-smoothing", type=checked("label_smoothing"), default=None)
    p.add_argument("--schedule", choices=("step", "cosine", "linear"), default=None,
                   help="learning-rate schedule after the warm-up: step, cosine, or linear to 0")  # fmt: skip
    p.add_argument("--step-epochs", type=checked("step_epochs"), default=None,
                   help="step schedule: divide by 10 every N epochs")  # fmt: skip
    p.add_argument("--warmup-epochs", type=checked("warmup_epochs"), default=None, help="linear learning-rate warm-up")
    p.add_argument("--warmup-fraction", type=checked("warmup_fraction"), default=None,
                   help="the warm-up as a fraction of --epochs (where --warmup-epochs is not given)")  # fmt: skip
    p.add_argument("--translate", type=checked("translate"), default=None, metavar="PX",
                   help="--device-data: shift training images by up to PX pixels (default: a side's 1/8)")  # fmt: skip
    p.add_argument("--cutout", type=checked("cutout"), default=None, metavar="PX",
                   help="--device-data: zero a PX x PX square of each training image (default 0: none)")  # fmt: skip
    p.add_argument("--crop-scale", nargs=2, type=checked("crop_scale"), default=None, metavar=("LOW", "HIGH"),
                   help="images above 64 px: the training crop's share of the image area (random-resized crop; "
                        "default 0.08 1)")  # fmt: skip
    p.add_argument("--crop-pct", type=checked("crop_pct"), default=None,
                   help="images above 64 px: evaluation's centre crop as a fraction of the resized image (default: "
                        "the model's, 0.875 for most; 1: the whole image)")  # fmt: skip
    p.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--mixup", type=checked("mixup"), default=None, help="mixup alpha (default 0: off)")
    p.add_argument("--cutmix", type=checked("cutmix"), default=None, help="cutmix alpha (default 0: off)")
    p.add_argument("--ema", action="store_true", default=None,
                   help="keep (and evaluate) an exponential moving average")  # fmt: skip
    p.add_argument("--ema-decay", type=checked("ema_decay"), default=None, help="default 0.9998")
    p.add_argument("--sync-bn", action="store_true", default=None, help="synchronised batch norm over all processes")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    p.add_argument("--output", default=None, metavar="DIR",
                   help="run folder (default output/train/<time>-<arch>)")  # fmt: skip
    p.add_argument("--log", nargs="+", choices=("csv", "tensorboard", "wandb"), default=None,
                   help="summary.csv is always written; also TensorBoard and/or W&B (offline by default)")  # fmt: skip
    p.add_argument("--checkpoint-every-steps", type=checked("checkpoint_every_steps"), default=None, metavar="N",
                   help="also write checkpoint.pth every N steps inside an epoch")  # fmt: skip


def validate_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``adaptconv validate``."""
    _data_args(p)
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="a training checkpoint (its model and, without DIR, its data), or any weights file (its "
                        "model found from its keys and shapes unless -a is given)")  # fmt: skip


def to_config(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed ``train`` or ``validate`` arguments."""
    names = TrainConfig.__dataclass_fields__
    values = {k: v for k, v in vars(args).items() if k in names}
    if values.get("model_kwargs"):
        values["model_kwargs"] = dict(values["model_kwargs"])
    if values.get("crop_scale"):
        values["crop_scale"] = tuple(values["crop_scale"])
    return TrainConfig(**values)
