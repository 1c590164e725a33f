"""``ptl pretrain``: pre-train a plain backbone on a (source) set and export it under torchvision's keys.

The backbone plays an ImageNet-trained network's part: it is trained from scratch to classify the
identities of the source set (cross-entropy over a single linear classifier, like an ImageNet
classifier; no triplet term, which stays a choice of the target's fine-tuning), then written as
``OUT/backbone.pth``, a plain state dict with torchvision's keys (``conv1.weight``, ``layer1.0...``,
``fc.weight``) that ``ptl train --pretrained`` loads into the backbone and into its PTL network. The
source's query/gallery split (held-out source identities) is evaluated after the last epoch, as a
check that the features learned something.
"""

import os

from .option_types import count, default_of, flag, rate

DESCRIPTION = (
    "Pre-train a plain backbone from scratch to classify the identities of a source set (e.g. `ptl synth "
    "--domain source`), evaluate it on the source's query/gallery and write OUT/backbone.pth with "
    "torchvision's keys, for `ptl train --pretrained OUT/backbone.pth`."
)
# What pre-training sets on the underlying `ptl train` run (not options of `ptl pretrain`).
FIXED = {"dataset": "market1501", "triplet_weight": 0.0, "dropout": 0.0, "save_every": 0, "eval_every": 0}


def add_options(parser):
    """The options of ``ptl pretrain`` (defaults from their library homes)."""
    from ..data.config import DataConfig
    from ..models import list_models
    from ..train import TrainConfig

    parser.add_argument("--root", required=True, help="source dataset folder in the Market layout")
    parser.add_argument(
        "--arch",
        choices=list_models(exclude=("ptl_*", "*mgn*")),
        default="resnet50",
        help="plain backbone to pre-train (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default="runs/pretrain",
        help="run folder: backbone.pth, metrics.csv, curves.png, last.pt (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=count(), default=30, help="training epochs (default: %(default)s)")
    parser.add_argument(
        "--lr",
        type=rate(exclusive_minimum=True),
        default=0.01,
        help="learning rate, from scratch (default: %(default)s)",
    )
    parser.add_argument(
        "--step-size",
        type=count(),
        default=None,
        help="epochs between x0.1 learning-rate steps (default: two thirds of --epochs)",
    )
    parser.add_argument("--height", type=count(), default=None, help="input height (default: the network's, 256)")
    parser.add_argument("--width", type=count(), default=None, help="input width (default: the network's, 128)")
    parser.add_argument(
        "--p", type=count(), default=default_of(DataConfig, "p"), help="identities per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--k",
        type=count(),
        default=default_of(DataConfig, "k"),
        help="images per identity in a batch (default: %(default)s)",
    )
    parser.add_argument(
        "--pad",
        type=count(0),
        default=default_of(DataConfig, "pad"),
        help="zero padding before the random crop (default: %(default)s; flips always)",
    )
    parser.add_argument(
        "--erasing",
        type=rate(0.0, 1.0),
        default=0.0,
        help="random erasing probability (default: %(default)s, crop and flip only, as ImageNet's)",
    )
    parser.add_argument(
        "--last-stride",
        type=int,
        choices=(1, 2),
        default=2,
        help="ResNet layer4 stride while pre-training (default 2, as torchvision's ImageNet networks; "
        "the weights fit either stride)",
    )
    parser.add_argument("--seed", type=count(0), default=0, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=count(0),
        default=default_of(DataConfig, "workers"),
        help="DataLoader worker processes (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=count(),
        default=default_of(DataConfig, "eval_batch_size"),
        help="images per evaluation batch (default: %(default)s)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    flag(parser, "progress", default_of(TrainConfig, "progress"), "progress bar")
    flag(parser, "overwrite", default_of(TrainConfig, "overwrite"), "replace a run already in --out")


def pretrain_options(**values):
    """The checked namespace of ``ptl pretrain`` with ``values`` (option dests) over the defaults."""
    from .options import command_options

    if "root" not in values:
        raise ValueError("ptl pretrain: option root is required")
    return command_options("pretrain", values, ["--root", str(values["root"])])


def _train_options(args):
    """The ``ptl train`` namespace of the pre-training run."""
    from ..models import model_info
    from .options import train_options

    height, width = model_info(args.arch).input_size
    values = dict(
        FIXED,
        root=args.root,
        arch=args.arch,
        out=args.out,
        epochs=args.epochs,
        lr=args.lr,
        step_size=args.step_size or max(1, 2 * args.epochs // 3),
        height=args.height or height,
        width=args.width or width,
        overwrite=args.overwrite,
        p=args.p,
        k=args.k,
        pad=args.pad,
        erasing=args.erasing,
        last_stride=args.last_stride,
        seed=args.seed,
        workers=args.workers,
        eval_batch_size=args.eval_batch_size,
        progress=args.progress,
    )
    if args.device is not None:
        values["device"] = args.device
    return train_options(**values)


def build_pretrain_model(arch, num_classes, size, last_stride=2):
    """``BackboneNet`` of ``arch`` with one linear classifier over ``num_classes`` (a torchvision-like net)."""
    from ..models import BackboneNet, build_backbone

    options = {"last_stride": last_stride} if arch.startswith("resnet") else {}
    return BackboneNet(
        build_backbone(arch, **options).stages(),
        num_classes,
        head="cifar",
        head_hidden=(),
        dropout=0.0,
        input_size=tuple(size),
    )


def run_pretrain(args):
    """Pre-train as ``args`` says (see ``ptl pretrain --help``); returns ``(backbone path, trainer)``."""
    import torch

    from ..models import build_backbone, count_parameters, save_torchvision_backbone
    from ..train import DistInfo, Trainer
    from .dataset import build_data
    from .report import format_table
    from .run import build_loss, select_device, train_config

    run = _train_options(args)
    device, info = select_device(run.device), DistInfo()
    size = (run.height, run.width)
    train_loader, evaluator, num_classes, protocol = build_data(run, info, *size)
    torch.manual_seed(run.seed)
    model = build_pretrain_model(run.arch, num_classes, size, run.last_stride)
    config = train_config(run, f"pre-training {run.arch} on {run.root}")
    meta = {
        "arch": run.arch,
        "num_classes": num_classes,
        "height": size[0],
        "width": size[1],
        "last_stride": run.last_stride,
        "root": os.path.abspath(run.root),
        "protocol": protocol,
        "parameters": count_parameters(model),
        "pretraining": True,
    }
    trainer = Trainer(
        model, train_loader, config, evaluator=evaluator, loss_fn=build_loss(run), device=device, info=info, meta=meta
    )
    print(
        f"pre-training {run.arch} ({meta['parameters'] / 1e6:.2f} M parameters) to classify {num_classes} "
        f"source identities; run folder {run.out}",
        flush=True,
    )
    trainer.fit()
    path = os.path.join(run.out, "backbone.pth")
    save_torchvision_backbone(path, model.cpu(), build_backbone(run.arch))
    print(format_table([(f"{run.arch} (source test split)", meta["parameters"], trainer.history[-1])]))
    print(f"wrote {path} (torchvision keys): ptl train --pretrained {path} ...", flush=True)
    return path, trainer
