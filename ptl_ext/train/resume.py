"""What a resume may change: the run's settings are compared with the checkpoint's before anything is loaded.

A resume continues the same run, so every setting that changes what is trained must be the one saved in
the checkpoint: the :class:`~ptl_ext.train.TrainConfig` (learning rates, momentum, weight decay, step size,
gamma, Nesterov, AMP), the trainer's ``meta`` (whatever the caller records there: network, dataset, image
size, batch P/K, seed, loss weights, ...) and the training method with its settings. These may change:

- ``TrainConfig``: :data:`CONFIG_MAY_CHANGE` (``epochs`` may grow, or shrink down to the epochs already
  trained; how often to evaluate and save; the progress bar, the plot title, the folder path);
- ``meta``: :data:`META_MAY_CHANGE` (the dataset folder path, the parameter count, the teacher's measured
  scores) and any key that only one side has (checkpoints of older versions record fewer keys).

Anything outside the trainer (DataLoader workers, device, evaluation batch size) is not recorded and free.

A resume starts from ``OUT/last.pt``, or from any checkpoint into a folder without ``last.pt`` (a fork);
one from another file into a used folder is refused (:func:`check_resume_source`): it would rewind the run.
"""

import os
from dataclasses import asdict

from ..errors import MethodMismatchError, ResumeMismatchError, RunFolderError

__all__ = ["CONFIG_MAY_CHANGE", "META_MAY_CHANGE", "setting_differences", "check_resume", "check_resume_source"]

CONFIG_MAY_CHANGE = frozenset(
    {"epochs", "eval_every", "save_every", "checkpoints", "progress", "title", "out_dir", "overwrite"}
)
META_MAY_CHANGE = frozenset({"root", "parameters", "teacher"})


def _plain(value):
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def setting_differences(saved, given, may_change=(), prefix=""):
    """``[(prefix + key, saved value, given value)]`` for the keys of both dicts whose values differ.

    Keys in ``may_change`` and keys that only one dict has are skipped; lists and tuples compare alike.
    """
    return [
        (prefix + key, saved[key], given[key])
        for key in given
        if key in saved and key not in may_change and _plain(saved[key]) != _plain(given[key])
    ]


def check_resume_source(path, out_dir):
    """Refuse a resume that would rewind the run in ``out_dir``: one from a file other than its ``last.pt``.

    A resume continues from the checkpoint it is given and rewrites ``last.pt``, ``best.pt`` and the metrics
    rows after that epoch. From ``OUT/last.pt`` that loses nothing. From another file (``best.pt``, a copy)
    into a folder whose ``last.pt`` exists, the epochs trained after it would be lost, so it is refused. Into
    a folder without ``last.pt`` (a new one) it forks: the old run stays as it is and the new folder holds
    the continuation.

    Raises:
        RunFolderError: naming ``path``, the folder's ``last.pt`` and the two ways out.
    """
    last = os.path.join(out_dir, "last.pt")
    if not os.path.exists(last) or os.path.samefile(path, last):
        return
    raise RunFolderError(
        f"resuming from {path} would rewind the run in {out_dir} to that checkpoint's epoch and overwrite its "
        f"last.pt, losing the epochs trained since: resume from {last}, or continue from {path} in a new run "
        "folder (another output folder forks the run and leaves this one as it is)"
    )


def _method_title(name):
    return "no training method" if name == "plain" else name.replace("_", " ")


def check_resume(path, state, config, meta, method):
    """Refuse to resume ``state`` (read from ``path``) with another method or other settings.

    Args:
        state: a trainer checkpoint (``config``, ``meta``, ``epoch`` and, since this version, ``method``).
        config: the resuming run's :class:`~ptl_ext.train.TrainConfig`; meta: its ``meta`` dict;
        method: its :class:`~ptl_ext.train.method.TrainingMethod`.
    Raises:
        MethodMismatchError: the checkpoint was trained with another method (``.saved``, ``.given`` name them).
        ResumeMismatchError: settings differ; the message lists each as ``name: saved X, given Y``
            (``.differences`` holds the tuples).
    """
    check_resume_source(path, config.out_dir)
    saved_method = state.get("method")
    if saved_method is not None and saved_method["name"] != method.name:
        raise MethodMismatchError(
            f"checkpoint {path} was trained with {_method_title(saved_method['name'])}, this run has "
            f"{_method_title(method.name)}: resume it with the same training method and settings",
            saved=saved_method["name"],
            given=method.name,
        )
    differences = setting_differences(state.get("config", {}), asdict(config), CONFIG_MAY_CHANGE)
    differences += setting_differences(state.get("meta", {}), meta, META_MAY_CHANGE)
    if saved_method is not None:
        differences += setting_differences(
            saved_method.get("settings", {}), method.settings(), prefix=f"{method.name}."
        )
    if config.epochs < state["epoch"]:
        differences.append(("epochs", f">= {state['epoch']} (epochs already trained)", config.epochs))
    if differences:
        listed = "; ".join(f"{name}: saved {saved!r}, given {given!r}" for name, saved, given in differences)
        raise ResumeMismatchError(
            f"checkpoint {path} was trained with other settings ({listed}): resume with the "
            "saved settings, or start a new run in another folder",
            differences,
        )
