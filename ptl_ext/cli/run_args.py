"""``ptl train`` options: the run (cadence, folder, resume, seed) and the training methods."""

from .option_types import count, default_of, flag, rate


def add_run_options(parser):
    """``ptl train``: evaluation/save cadence, run folder, resume, seed."""
    from ..runs.spec import RunSpec
    from ..train.config import TrainConfig

    run = parser.add_argument_group("run")
    run.add_argument(
        "--eval-every",
        type=count(0),
        default=default_of(TrainConfig, "eval_every"),
        help="evaluate every N epochs and after the last, 0 = after the last only (default: %(default)s)",
    )
    run.add_argument(
        "--save-every",
        type=count(0),
        default=default_of(TrainConfig, "save_every"),
        help="write last.pt (and redraw curves.png) every N epochs and after the last, 0 = after the last only; "
        "both are also written at every evaluation (default: %(default)s)",
    )
    run.add_argument(
        "--out",
        default=default_of(TrainConfig, "out_dir"),
        help="run folder: metrics.csv, curves.png, last.pt, best.pt (default: %(default)s)",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue the run in --out from a checkpoint (no value: OUT/last.pt); the options that "
        "change training must match the checkpoint's (--epochs may grow)",
    )
    flag(
        run,
        "overwrite",
        default_of(TrainConfig, "overwrite"),
        "replace the run already in --out (its checkpoints, metrics.csv and curves.png are deleted first)",
    )
    run.add_argument(
        "--seed", type=count(0), default=default_of(RunSpec, "seed"), help="random seed (default: %(default)s)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check every option, print the resolved settings (and a config file's paper numbers) "
        "and stop: no data is read, no network built",
    )
    flag(run, "progress", default_of(TrainConfig, "progress"), "progress bar")
    flag(
        run,
        "tensorboard",
        default_of(RunSpec, "tensorboard"),
        "also write the epoch scalars to OUT/tensorboard (needs the tensorboard package)",
    )


def add_method_options(parser):
    """``ptl train``: STD, rolling back and chained fine-tuning."""
    from ..runs.spec import ROLLBACK_BUDGETS, ROLLBACK_MODES, MethodOptions
    from ..train.distill import DEFAULT_STD_LAMBDA
    from ..train.rolling_back import RollbackSchedule

    methods = parser.add_argument_group("methods (STD, rolling back, chained fine-tuning)")
    methods.add_argument(
        "--teacher",
        default=None,
        help="STD: a `ptl train` checkpoint whose network (frozen, eval mode) teaches its "
        "features; evaluated once before training",
    )
    methods.add_argument(
        "--std-lambda",
        type=rate(0.0, 1.0),
        default=None,
        help=f"STD: weight of the L1 feature term, loss = (1-λ)·CE + λ·L1 (default "
        f"{DEFAULT_STD_LAMBDA}; needs --teacher)",
    )
    methods.add_argument(
        "--rollback-periods",
        type=count(0),
        default=default_of(MethodOptions, "rollback_periods"),
        help=f"rolling back: number of periods, 0 = off (the paper: "
        f"{default_of(RollbackSchedule, 'periods')}); replaces --epochs by periods × "
        f"--period-epochs and the step schedule by the periods' own",
    )
    methods.add_argument(
        "--period-epochs",
        type=count(),
        default=default_of(RollbackSchedule, "epochs_per_period"),
        help="rolling back: epochs per period (default: %(default)s)",
    )
    methods.add_argument(
        "--rollback-budget",
        choices=ROLLBACK_BUDGETS,
        default=default_of(MethodOptions, "rollback_budget"),
        help="rolling back: per_period (the paper: every period has --period-epochs epochs and its own "
        "schedule) or shared (--epochs split equally between the periods, an equal-budget comparison) "
        f"(default: {ROLLBACK_BUDGETS[0]})",
    )
    methods.add_argument(
        "--rollback-mode",
        choices=ROLLBACK_MODES,
        default=default_of(MethodOptions, "rollback_mode"),
        help="rolling back: roll_back (the paper's method) or base_cy (the paper's Figure-4 control: the same "
        "periods, fresh optimizers and learning-rate restarts, nothing rolled back) "
        f"(default: {ROLLBACK_MODES[0]})",
    )
    methods.add_argument(
        "--rollback-keep",
        type=count(),
        default=default_of(MethodOptions, "rollback_keep"),
        help="rolling back, 2 periods: period 2 keeps only block N (1-based) and rolls every other block "
        "back (the rolling-back paper's Table 1) (default: the incremental scheme, period p keeps B1..B(p-1))",
    )
    methods.add_argument(
        "--period-decay-epoch",
        type=count(),
        default=None,
        help="rolling back: epoch of a period at which its rates are multiplied by --gamma (default: half the period)",
    )
    methods.add_argument(
        "--kept-lr",
        type=rate(),
        default=None,
        help="rolling back: rate of the kept blocks in periods >= 2 (default --lr/10); the "
        "rolled-back blocks and the side stream use --lr, the head --head-lr (default "
        "10·--lr) in period 1",
    )
    methods.add_argument(
        "--chain",
        default=None,
        help="chained fine-tuning: comma-separated datasets trained in turn, each from the "
        "previous one's last.pt with a new head, e.g. duke,market,msmt17 (folders under "
        "--root, or NAME=FOLDER); step runs go to OUT/1_NAME, OUT/2_NAME, ...",
    )
