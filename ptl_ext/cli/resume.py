"""What a ``ptl train`` checkpoint records of its options, and a refused resume told in option names."""

import os

from .options import OptionError


def run_meta(args, num_classes, protocol, parameters):
    """The checkpoint ``meta`` of a run: what rebuilds the network and the settings a resume must keep."""
    meta = {
        "arch": args.arch,
        "num_classes": num_classes,
        "height": args.height,
        "width": args.width,
        "v2": False,
        "last_stride": args.last_stride,
        "head": args.head,
        "dropout": args.dropout,
        "side_width": args.side_width,
        "cell_state": args.cell_state,
        "dataset": args.dataset,
        "root": os.path.abspath(args.root),
        "protocol": protocol,
        "parameters": parameters,
    }
    meta.update({name: getattr(args, name) for name in RESUME_KEPT})
    return meta


# Options recorded in the checkpoint's meta that a resume must give unchanged (besides TrainConfig's).
RESUME_KEPT = (
    "seed",
    "p",
    "k",
    "loss",
    "triplet_weight",
    "triplet_margin",
    "label_smoothing",
    "erasing",
    "pad",
    "batch_size",
    "augment",
    "pretrained",
    "init_from",
)
METHOD_OPTIONS = {"rolling_back": "--rollback-periods", "std": "--teacher"}
SETTING_OPTIONS = {
    "rolling_back.periods": "--rollback-periods",
    "rolling_back.epochs_per_period": "--period-epochs",
    "rolling_back.decay_epoch": "--period-decay-epoch",
    "rolling_back.kept_lr": "--kept-lr",
    "rolling_back.first_head_lr": "--head-lr",
    "std.lam": "--std-lambda",
    "height": "--height",
    "width": "--width",
    "arch": "--arch",
    "dataset": "--dataset",
}


def resume_error(exc, path):
    """A one-line :class:`OptionError` naming the options of a refused resume (``exc`` from the Trainer)."""
    from ..errors import MethodMismatchError

    if isinstance(exc, MethodMismatchError):
        saved = [METHOD_OPTIONS.get(name, name) for name in (exc.saved or "").split("+") if name in METHOD_OPTIONS]
        given = [METHOD_OPTIONS.get(name, name) for name in (exc.given or "").split("+") if name in METHOD_OPTIONS]
        missing = [option for option in saved if option not in given]
        extra = [option for option in given if option not in saved]
        hint = "; ".join(
            [
                *(f"give {o} as when it was trained" for o in missing),
                *(f"{o} was not used when it was trained" for o in extra),
            ]
        )
        return OptionError(f"--resume {path}: {exc}" + (f" ({hint})" if hint else ""))
    listed = "; ".join(
        f"{SETTING_OPTIONS.get(name, '--' + name.split('.')[-1].replace('_', '-'))}: saved {saved!r}, given {given!r}"
        for name, saved, given in exc.differences
    )
    return OptionError(
        f"--resume {path}: the checkpoint was trained with other options ({listed}); resume with the "
        f"saved options (--epochs may grow), or start a new run with --overwrite or another --out"
    )
