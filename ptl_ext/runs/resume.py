"""What a run records of its :class:`~ptl_ext.runs.RunSpec` and how a resume is compared with it.

A run writes its spec to ``OUT/run_spec.json`` (flat option values) beside its checkpoints; ``--resume``
reads it back and compares it with the resuming spec (:func:`check_resumed_spec`): every option that
changes what is trained must be the saved one (:data:`RESUME_FREE` lists those that may change). The
checkpoint's ``meta`` (:func:`run_meta`) records what rebuilds the network; the Trainer checks the file and
compares its own settings first (:mod:`ptl_ext.train.resume`: a corrupted file or another training method is
reported as such, and a run folder without a spec file is still compared), then the specs are.
"""

import json
import os

from ..errors import OptionError

SPEC_FILE = "run_spec.json"
# options a resume may change: where and how the run goes on, and how it is evaluated (``epochs`` may grow;
# the Trainer refuses fewer epochs than already trained)
RESUME_FREE = frozenset(
    {
        "epochs",
        "eval_every",
        "save_every",
        "progress",
        "out",
        "overwrite",
        "root",
        "teacher",
        "resume",
        "device",
        "workers",
        "eval_batch_size",
        "tensorboard",
        "metric",
        "rerank",
        "flip",
        "normalize",
        "k1",
        "k2",
        "lambda_value",
        "aqe_k",
        "aqe_alpha",
        "chain",
    }
)
# a method's options, compared only when the method is on in both runs
METHOD_ONLY = {
    "std_lambda": "teacher",
    "period_epochs": "rollback_periods",
    "period_decay_epoch": "rollback_periods",
    "rollback_budget": "rollback_periods",
    "rollback_mode": "rollback_periods",
    "rollback_keep": "rollback_periods",
}
METHOD_NAMES = {"rolling_back": "--rollback-periods", "std": "--teacher"}
SETTING_OPTIONS = {
    "rolling_back.periods": "--rollback-periods",
    "rolling_back.epochs_per_period": "--period-epochs",
    "rolling_back.decay_epoch": "--period-decay-epoch",
    "rolling_back.kept_lr": "--kept-lr",
    "rolling_back.first_head_lr": "--head-lr",
    "rolling_back.keep": "--rollback-keep",
    "rolling_back.restore": "--rollback-mode",
    "std.lam": "--std-lambda",
    "lambda_value": "--lambda",
}


def run_meta(spec, num_classes, protocol, parameters):
    """The checkpoint ``meta`` of a run: what rebuilds the network and the settings a resume must keep."""
    model, data, loss = spec.model, spec.data, spec.loss
    return {
        "arch": model.arch,
        "num_classes": num_classes,
        "height": spec.height,
        "width": spec.width,
        "v2": False,
        "last_stride": model.last_stride,
        "head": model.head,
        "head_init": model.head_init,
        "mgn_reductions": model.mgn_reductions,
        "dropout": model.dropout,
        "side_width": model.side_width,
        "cell_state": model.cell_state,
        "dataset": spec.dataset,
        "root": os.path.abspath(spec.root),
        "protocol": protocol,
        "parameters": parameters,
        "seed": spec.seed,
        "sampler": data.sampler,
        "p": data.p,
        "k": data.k,
        "loss": loss.loss,
        "triplet_weight": loss.triplet_weight,
        "triplet_margin": loss.triplet_margin,
        "label_smoothing": loss.label_smoothing,
        "erasing": data.erasing,
        "pad": data.pad,
        "batch_size": data.batch_size,
        "augment": data.augment,
        "pretrained": model.pretrained,
        "init_from": model.init_from,
    }


def write_spec(spec, folder):
    """Write ``spec``'s options to ``FOLDER/run_spec.json`` (atomically)."""
    from .._io import atomic_write

    text = json.dumps(spec.options(), indent=1)
    atomic_write(os.path.join(folder, SPEC_FILE), lambda fh: fh.write(text), binary=False)


def saved_spec(checkpoint):
    """The :class:`RunSpec` saved beside ``checkpoint`` (``None`` when the run folder has no spec file)."""
    return _read_saved(checkpoint)[0]


def _read_saved(checkpoint):
    """``(saved RunSpec, the option names its file records)``, or ``(None, None)`` without a spec file.

    A file written before an option existed lacks that option; its spec holds the option's field default."""
    from .spec import RunSpec

    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), SPEC_FILE)
    if not os.path.isfile(path):
        return None, None
    with open(path) as fh:
        try:
            values = json.load(fh)
            return RunSpec.from_options(values), set(values)
        except (ValueError, TypeError) as exc:
            raise OptionError(f"--resume {checkpoint}: unreadable {SPEC_FILE}: {exc}") from None


def spec_differences(saved, given, recorded=None):
    """``[(option, saved value, given value)]`` of the options a resume must keep unchanged.

    A method's options count only when the method is on in both; a method on in one run only is not listed
    (the Trainer refuses it, naming the method). ``recorded``: the options the saved file holds (``None``:
    all); an option added to :class:`RunSpec` after the run was written is not compared.
    """
    old, new = saved.options(), given.options()
    if recorded is not None:
        old = {key: value for key, value in old.items() if key in recorded}
    differences = []
    for key, value in new.items():
        if key in RESUME_FREE or key not in old or old[key] == value:
            continue
        if key in METHOD_ONLY and not (old[METHOD_ONLY[key]] and new[METHOD_ONLY[key]]):
            continue
        differences.append((key, old[key], value))
    return differences


def check_resumed_spec(checkpoint, spec):
    """Refuse (an :class:`OptionError` naming the options) to resume ``checkpoint`` with ``spec`` when the saved
    spec differs in an option a resume must keep; a change of training method is left to the Trainer. Options
    the spec file does not record (added after the run started) are not compared."""
    saved, recorded = _read_saved(checkpoint)
    if saved is None or saved.method.names != spec.method.names:
        return
    differences = [difference for difference in spec_differences(saved, spec) if difference[0] in recorded]
    if differences:
        raise _settings_error(checkpoint, [("--" + key.replace("_", "-"), old, new) for key, old, new in differences])


def _settings_error(path, listed):
    text = "; ".join(f"{option}: saved {saved!r}, given {given!r}" for option, saved, given in listed)
    return OptionError(
        f"--resume {path}: the checkpoint was trained with other options ({text}); resume with the "
        f"saved options (--epochs may grow), or start a new run with --overwrite or another --out"
    )


def resume_error(exc, path):
    """A one-line :class:`OptionError` naming the options of a refused resume (``exc`` from the Trainer)."""
    from ..errors import MethodMismatchError

    if isinstance(exc, MethodMismatchError):
        saved = [METHOD_NAMES.get(name, name) for name in (exc.saved or "").split("+") if name in METHOD_NAMES]
        given = [METHOD_NAMES.get(name, name) for name in (exc.given or "").split("+") if name in METHOD_NAMES]
        missing = [option for option in saved if option not in given]
        extra = [option for option in given if option not in saved]
        hint = "; ".join(
            [
                *(f"give {o} as when it was trained" for o in missing),
                *(f"{o} was not used when it was trained" for o in extra),
            ]
        )
        return OptionError(f"--resume {path}: {exc}" + (f" ({hint})" if hint else ""))
    return _settings_error(
        path,
        [
            (SETTING_OPTIONS.get(name, "--" + name.split(".")[-1].replace("_", "-")), saved, given)
            for name, saved, given in exc.differences
        ],
    )
