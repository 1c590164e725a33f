"""``ptl synth``: write a synthetic Market-format or CIFAR-format dataset."""

from .options import CIFAR_DATASETS


def run_synth(args):
    """Write a synthetic dataset (see ``ptl synth --help``); returns the generator's summary."""
    from ..data import make_synthetic_cifar, make_synthetic_market

    if args.format != "market":
        info = make_synthetic_cifar(args.out, CIFAR_DATASETS[args.format], args.train_per_class,
                                    args.test_per_class, seed=args.seed)
        print(f"wrote {info['train']} training and {info['test']} test images to {info['folder']}")
        return info
    info = make_synthetic_market(args.out, num_train_ids=args.train_ids, num_test_ids=args.test_ids,
                                 num_cams=args.cams, images_per_cam=args.images_per_cam,
                                 num_distractors=args.distractors, num_junk=args.junk, height=args.height,
                                 width=args.width, seed=args.seed, domain=args.domain)
    counts = info["counts"]
    print(f"wrote {sum(counts.values())} {args.domain}-domain images to {args.out}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return info
