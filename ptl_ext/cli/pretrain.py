"""``ptl pretrain``: pre-train a plain backbone on a (source) set and export it under torchvision's keys
(the run: :mod:`ptl_ext.runs.pretrain`, whose :func:`~ptl_ext.runs.pretrain.pretrain_spec` holds the defaults).
"""

from .option_types import count, default_of, flag, rate

DESCRIPTION = (
    "Pre-train a plain backbone from scratch to classify the identities of a source set (e.g. `ptl synth "
    "--domain source`), evaluate it on the source's query/gallery and write OUT/backbone.pth with "
    "torchvision's keys, for `ptl train --pretrained OUT/backbone.pth`."
)


def add_options(parser):
    """The options of ``ptl pretrain`` (defaults from :func:`~ptl_ext.runs.pretrain.pretrain_spec`)."""
    from ..models._registry import list_models
    from ..runs.pretrain import pretrain_spec

    def default(name):
        return default_of(pretrain_spec, name)

    parser.add_argument("--root", required=True, help="source dataset folder in the Market layout")
    parser.add_argument(
        "--arch",
        choices=list_models(exclude=("ptl_*", "*mgn*")),
        default=default("arch"),
        help="plain backbone to pre-train (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        default=default("out"),
        help="run folder: backbone.pth, metrics.csv, curves.png, last.pt (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=count(), default=default("epochs"), help="training epochs (default: %(default)s)"
    )
    parser.add_argument(
        "--lr",
        type=rate(exclusive_minimum=True),
        default=default("lr"),
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
    parser.add_argument("--p", type=count(), default=default("p"), help="identities per batch (default: %(default)s)")
    parser.add_argument(
        "--k",
        type=count(),
        default=default("k"),
        help="images per identity in a batch (default: %(default)s)",
    )
    parser.add_argument(
        "--pad",
        type=count(0),
        default=default("pad"),
        help="zero padding before the random crop (default: %(default)s; flips always)",
    )
    parser.add_argument(
        "--erasing",
        type=rate(0.0, 1.0),
        default=default("erasing"),
        help="random erasing probability (default: %(default)s, crop and flip only, as ImageNet's)",
    )
    parser.add_argument(
        "--last-stride",
        type=int,
        choices=(1, 2),
        default=default("last_stride"),
        help="ResNet layer4 stride while pre-training (default 2, as torchvision's ImageNet networks; "
        "the weights fit either stride)",
    )
    parser.add_argument("--seed", type=count(0), default=default("seed"), help="random seed (default: %(default)s)")
    parser.add_argument(
        "--workers",
        type=count(0),
        default=default("workers"),
        help="DataLoader worker processes (default: %(default)s)",
    )
    parser.add_argument(
        "--eval-batch-size",
        type=count(),
        default=default("eval_batch_size"),
        help="images per evaluation batch (default: %(default)s)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    flag(parser, "progress", default("progress"), "progress bar")
    flag(parser, "overwrite", default("overwrite"), "replace a run already in --out")


def run_pretrain(args):
    """Pre-train as ``args`` says (see ``ptl pretrain --help``); returns ``(backbone path, trainer)``."""
    from ..runs.pretrain import pretrain_spec
    from ..runs.pretrain import run_pretrain as run

    options = {key: value for key, value in vars(args).items() if key not in ("command", "debug", "paper")}
    return run(pretrain_spec(**options))
