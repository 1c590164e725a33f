"""``ptl demo``: a synthetic set, then the plain backbone, its PTL network, STD and rolling back compared.

The runs are built from option dicts checked like a config file (:func:`ptl_ext.cli.options.train_options`).
"""

import os
import tempfile
import time

from .report import format_table

DEMO_ARCH = "resnet34"
DESCRIPTION = (
    "Generate a synthetic Market-format set and train on it: the plain backbone (baseline) and its "
    "PTL network from scratch, the plain backbone taught by the PTL network (STD), and the baseline's "
    "weights refine-tuned by rolling back; evaluate each and print a table."
)


def add_options(parser):
    """The options of ``ptl demo``."""
    import argparse

    from ..models import list_models
    from .option_types import count, rate

    parser.add_argument("--out", default=None, help="demo folder (default: a new folder in the temp directory)")
    parser.add_argument(
        "--arch",
        default=DEMO_ARCH,
        choices=list_models(exclude=("ptl_*", "*mgn*")),
        help="plain backbone to compare with ptl_ARCH (default: %(default)s)",
    )
    parser.add_argument("--epochs", type=count(), default=10, help="training epochs per network (default: %(default)s)")
    parser.add_argument(
        "--rollback-periods",
        type=count(),
        default=3,
        help="rolling-back periods of the last row, each --epochs/periods epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--train-ids", type=count(2), default=32, help="synthetic training identities (default: %(default)s)"
    )
    parser.add_argument("--test-ids", type=count(), default=32, help="synthetic test identities (default: %(default)s)")
    parser.add_argument(
        "--images-per-cam", type=count(2), default=4, help="images per identity and camera (default: %(default)s)"
    )
    parser.add_argument("--height", type=count(8), default=64, help="image height (default: %(default)s)")
    parser.add_argument("--width", type=count(8), default=32, help="image width (default: %(default)s)")
    parser.add_argument(
        "--lr",
        type=rate(exclusive_minimum=True),
        default=0.05,
        help="learning rate (from scratch, so higher than PTL's 0.01; default: %(default)s)",
    )
    parser.add_argument("--seed", type=count(0), default=0, help="seed of the data and of the training (default: 0)")
    parser.add_argument("--workers", type=count(0), default=0, help="DataLoader worker processes (default: 0)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")


def _dataset(args, out):
    """The demo's synthetic set in ``out/data`` (generated once, reused when present)."""
    from ..data import make_synthetic_market

    data_dir = os.path.join(out, "data")
    if os.path.isdir(os.path.join(data_dir, "bounding_box_train")):
        print(f"using the synthetic dataset already in {data_dir}", flush=True)
    else:
        print(f"generating the synthetic dataset in {data_dir} ...", flush=True)
        make_synthetic_market(
            data_dir,
            num_train_ids=args.train_ids,
            num_test_ids=args.test_ids,
            num_cams=4,
            images_per_cam=args.images_per_cam,
            height=args.height,
            width=args.width,
            seed=args.seed,
        )
    return data_dir


def demo_runs(args, out, data_dir):
    """``[(row name, run folder, option dict), ...]`` in order: STD needs the PTL run, rolling back the
    baseline's weights."""
    arch, ptl = args.arch, f"ptl_{args.arch}"
    common = {
        "dataset": "market1501",
        "root": data_dir,
        "height": args.height,
        "width": args.width,
        "dropout": 0.0,
        "p": min(8, args.train_ids),
        "k": 4,
        "triplet_weight": 1.0,
        "pad": 4,
        "erasing": 0.3,
        "save_every": 0,
        "seed": args.seed,
        "workers": args.workers,
        "device": "cpu",
        "progress": args.progress,
    }
    scratch = {
        **common,
        "epochs": args.epochs,
        "lr": args.lr,
        "step_size": max(1, 2 * args.epochs // 3),
        "eval_every": max(1, args.epochs // 3),
    }
    period_epochs = max(1, args.epochs // args.rollback_periods)
    return [
        (arch, arch, {**scratch, "arch": arch}),
        (ptl, ptl, {**scratch, "arch": ptl}),
        (f"{arch} + STD", f"std_{arch}", {**scratch, "arch": arch, "teacher": os.path.join(out, ptl, "last.pt")}),
        (
            f"{arch} + rolling back",
            f"rollback_{arch}",
            {
                **scratch,
                "arch": arch,
                "init_from": os.path.join(out, arch, "last.pt"),
                "lr": 0.01,
                "rollback_periods": args.rollback_periods,
                "period_epochs": period_epochs,
                "eval_every": period_epochs,
            },
        ),
    ]


def run_demo(args):
    """Synthetic data, then baseline, PTL, PTL+STD and rolling back trained and compared; returns the table rows."""
    from .options import train_options
    from .run import run_train

    out = args.out or tempfile.mkdtemp(prefix="ptl-demo-")
    data_dir = _dataset(args, out)
    rows, plots = [], []
    for name, folder, options in demo_runs(args, out, data_dir):
        options["out"] = os.path.join(out, folder)
        print(
            f"\n== {name}: " + ", ".join(f"{k}={v}" for k, v in options.items() if k not in ("root", "out")), flush=True
        )
        started = time.perf_counter()
        trainer = run_train(train_options(**options, overwrite=True))  # the demo's own folders
        print(f"   {name}: {time.perf_counter() - started:.0f} s", flush=True)
        rows.append((name, trainer.meta["parameters"], trainer.history[-1]))
        plots.append(trainer.path("curves.png"))
    print(
        f"\nsynthetic ReID, cross-camera retrieval: baseline and PTL from scratch; STD: the baseline network "
        f"taught by ptl_{args.arch} (lambda 0.8); rolling back: the baseline's weights refine-tuned in "
        f"{args.rollback_periods} periods"
    )
    print(format_table(rows))
    print("plots: " + ", ".join(plots))
    return rows
