"""``ptl synth``: write a synthetic Market-format or CIFAR-format dataset."""


def add_options(parser):
    """The options of ``ptl synth``: the synthetic Market-format or CIFAR-format set."""
    from ..data import make_synthetic_cifar, make_synthetic_market
    from .option_types import Number, count, default_of

    def synth(name):
        return default_of(make_synthetic_market, name)

    parser.add_argument("out", help="output folder (created; must not hold a dataset already)")
    parser.add_argument(
        "--train-ids", type=count(), default=synth("num_train_ids"), help="training identities (default: %(default)s)"
    )
    parser.add_argument(
        "--test-ids", type=count(), default=synth("num_test_ids"), help="test identities (default: %(default)s)"
    )
    parser.add_argument(
        "--cams", type=Number(int, 2, 6), default=synth("num_cams"), help="cameras, 2..6 (default: %(default)s)"
    )
    parser.add_argument(
        "--images-per-cam",
        type=count(2),
        default=synth("images_per_cam"),
        help="images per identity and camera, >= 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--distractors",
        type=count(0),
        default=synth("num_distractors"),
        help="pid-0 distractor images in the gallery (default: %(default)s)",
    )
    parser.add_argument(
        "--junk",
        type=count(0),
        default=synth("num_junk"),
        help="pid -1 junk images in the gallery (default: %(default)s)",
    )
    parser.add_argument("--height", type=count(8), default=synth("height"), help="image height (default: %(default)s)")
    parser.add_argument("--width", type=count(8), default=synth("width"), help="image width (default: %(default)s)")
    parser.add_argument("--seed", type=count(0), default=synth("seed"), help="random seed (default: %(default)s)")
    parser.add_argument(
        "--domain",
        choices=("target", "source"),
        default=default_of(make_synthetic_market, "domain"),
        help="target: the ReID set to fine-tune and test on (default); source: a pre-training set "
        "with other people and other camera statistics (give it more --train-ids than the "
        "target), see `ptl pretrain`",
    )
    parser.add_argument(
        "--format",
        choices=("market", "cifar10", "cifar100"),
        default="market",
        help="market (default) or a CIFAR-10/100 pickle set (classes differ by coarse colour "
        "patterns; only --seed and the --*-per-class options apply)",
    )
    parser.add_argument(
        "--train-per-class",
        type=count(),
        default=default_of(make_synthetic_cifar, "train_per_class"),
        help="CIFAR formats: training images per class (default: %(default)s)",
    )
    parser.add_argument(
        "--test-per-class",
        type=count(),
        default=default_of(make_synthetic_cifar, "test_per_class"),
        help="CIFAR formats: test images per class (default: %(default)s)",
    )


def run_synth(args):
    """Write a synthetic dataset (see ``ptl synth --help``); returns the generator's summary."""
    from ..data import get_dataset, make_synthetic_cifar, make_synthetic_market

    if args.format != "market":
        info = make_synthetic_cifar(
            args.out, get_dataset(args.format).num_classes, args.train_per_class, args.test_per_class, seed=args.seed
        )
        print(f"wrote {info['train']} training and {info['test']} test images to {info['folder']}")
        return info
    info = make_synthetic_market(
        args.out,
        num_train_ids=args.train_ids,
        num_test_ids=args.test_ids,
        num_cams=args.cams,
        images_per_cam=args.images_per_cam,
        num_distractors=args.distractors,
        num_junk=args.junk,
        height=args.height,
        width=args.width,
        seed=args.seed,
        domain=args.domain,
    )
    counts = info["counts"]
    print(
        f"wrote {sum(counts.values())} {args.domain}-domain images to {args.out}: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
    return info
