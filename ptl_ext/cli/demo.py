"""``ptl demo``: the transfer experiment of :mod:`ptl_ext.experiments.demo` on synthetic data, its options
(defaults from :class:`~ptl_ext.experiments.demo.DemoConfig`) and its call."""

DESCRIPTION = (
    "A transfer experiment on synthetic data: pre-train a backbone on a synthetic source domain (cached), "
    "then compare, all from that backbone on the synthetic target set: direct transfer, the fine-tuned "
    "backbone, its PTL network, STD taught by the PTL run and rolling back to the pre-trained weights, "
    "with equal epoch budgets. --seeds N gives mean ± sd and paired 95 % intervals."
)


def add_options(parser):
    """The options of ``ptl demo``."""
    import argparse

    from ..experiments.demo import DemoConfig
    from ..models._registry import list_models
    from .option_types import count, default_of, rate

    def opt(name, help_text, kind=None):
        default = default_of(DemoConfig, name[2:].replace("-", "_"))
        parser.add_argument(name, type=kind or count(), default=default, help=f"{help_text} (default: %(default)s)")

    parser.add_argument("--out", default=None, help="demo folder (default: a new folder in the temp directory)")
    parser.add_argument(
        "--cache",
        default=None,
        help="cache of the synthetic sets and pre-trained backbones (default: $PTL_CACHE, else "
        "$XDG_CACHE_HOME/ptl_ext, else ~/.cache/ptl_ext)",
    )
    parser.add_argument(
        "--arch",
        default=default_of(DemoConfig, "arch"),
        choices=list_models(exclude=("ptl_*", "*mgn*")),
        help="plain backbone; the PTL row is ptl_ARCH (default: %(default)s)",
    )
    opt("--epochs", "epochs of every fine-tuning row")
    opt("--rollback-periods", "rolling-back periods, each --epochs/periods epochs (must divide --epochs)")
    opt(
        "--lr",
        "fine-tuning learning rate (Adam) of every layer, the heads included",
        rate(exclusive_minimum=True),
    )
    opt("--train-ids", "target training identities", count(2))
    opt("--test-ids", "target test identities")
    opt("--images-per-cam", "target images per identity and camera", count(2))
    opt("--source-ids", "source (pre-training) identities, more than --train-ids", count(2))
    opt("--source-images-per-cam", "source images per identity and camera", count(2))
    opt("--pretrain-epochs", "pre-training epochs")
    opt("--pretrain-lr", "pre-training learning rate (from scratch)", rate(exclusive_minimum=True))
    opt("--height", "image height", count(16))
    opt("--width", "image width", count(8))
    opt("--seed", "seed of the data and of the pre-training; training seeds are SEED..SEED+N-1", count(0))
    opt("--seeds", "training seeds per row (N)")
    parser.add_argument(
        "--ablations",
        action=argparse.BooleanOptionalAction,
        default=default_of(DemoConfig, "ablations"),
        help="add the PTL ablation rows and the BatchNorm probe",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action=argparse.BooleanOptionalAction,
        default=default_of(DemoConfig, "keep_checkpoints"),
        help="keep each run's last.pt/best.pt (default: removed once the seed is done)",
    )
    opt("--workers", "DataLoader worker processes", count(0))
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=default_of(DemoConfig, "progress"),
        help="progress bars",
    )


def demo_config(args):
    """The :class:`~ptl_ext.experiments.demo.DemoConfig` of ``ptl demo``'s checked options."""
    import dataclasses

    from ..experiments.demo import DemoConfig

    return DemoConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoConfig)})


def run_demo(args):
    """Run the demo as ``args`` says (see ``ptl demo --help``); returns its result dict."""
    from ..experiments.demo import run_demo as run

    return run(demo_config(args))
