"""Running one training run of a :class:`~ptl_ext.runs.RunSpec`: the run folder, the Trainer, resume, fit."""

import os

from .device import select_device
from .report import format_table


def train_config(spec, title, **overrides):
    """The run's :class:`~ptl_ext.train.TrainConfig` with its ``title`` (``overrides`` replace fields)."""
    from dataclasses import replace

    return replace(spec.train, title=title, **overrides)


def run_train(spec):
    """Train as ``spec`` says; returns the trainer (rank 0 prints a summary).

    The run folder is checked and locked before any data is read. A chain (``spec.method.chain``) is run by
    :func:`ptl_ext.runs.chain.run_chain`, which calls this for each step.
    """
    import torch

    from ..errors import OptionError, RunFolderError
    from ..train import RunFolder, init_distributed

    if spec.method.chain:
        raise OptionError(f"run_train: chain {spec.method.chain!r} is run by ptl_ext.runs.run_chain")

    device = select_device(spec.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.distributed:
        device = torch.device("cuda", info.local_rank)
    if info.distributed:  # every rank opens the folder through the Trainer, which agrees on the outcome
        return _train(spec, device, info, None)
    out, resume, overwrite = spec.train.out_dir, bool(spec.resume), spec.train.overwrite
    folder = RunFolder(out, resume=resume, overwrite=overwrite)
    try:
        folder.acquire()
    except RunFolderError as exc:
        held = os.path.isdir(out) and folder.run_files() and not (resume or overwrite)
        raise RunFolderError(f"{exc}{' (--resume continues it, --overwrite replaces it)' if held else ''}") from None
    with folder:
        return _train(spec, device, info, folder)


def build_trainer(spec, device, info, folder=None, *, evaluate_teacher=True, **config_overrides):
    """The :class:`~ptl_ext.train.Trainer` of ``spec``, ready to fit: ``(trainer, teacher_rows)``.

    Data, network (with its starting weights), loss, training methods (STD, rolling back), config and
    meta, in the order that fixes the random streams. ``evaluate_teacher=False`` skips the STD teacher's
    evaluation (``teacher_rows`` is then empty); ``config_overrides`` replace TrainConfig fields.
    """
    import torch

    from ..models import count_parameters
    from ..train import Trainer
    from ..train.tensorboard import TensorBoardHook
    from .data import build_data
    from .methods import rollback_hook, std_method
    from .model import build_loss, build_model, input_size
    from .resume import run_meta

    size = input_size(spec)
    train_loader, evaluator, num_classes, protocol = build_data(spec, info, *size)
    model = build_model(spec, num_classes, size)
    torch.manual_seed(spec.seed + 1000 * info.rank)  # ranks augment differently
    std, teacher_rows = std_method(spec, model, evaluator, size, device, info, evaluate=evaluate_teacher)
    methods = [method for method in (std, rollback_hook(spec, model)) if method is not None]
    title = config_overrides.pop("title", f"{spec.model.arch} on {spec.dataset}")
    config = train_config(spec, title, **config_overrides)
    meta = run_meta(spec, num_classes, protocol, count_parameters(model))
    if teacher_rows:
        meta["teacher"] = {"checkpoint": os.path.abspath(spec.method.teacher), "metrics": teacher_rows[0][2]}
    hooks = [TensorBoardHook()] if spec.tensorboard else []
    trainer = Trainer(
        model,
        train_loader,
        config,
        evaluator=evaluator,
        loss_fn=build_loss(spec),
        method=methods,
        hooks=hooks,
        device=device,
        info=info,
        meta=meta,
        run_folder=folder,
    )
    return trainer, teacher_rows


def resume_path(spec):
    """The checkpoint ``spec.resume`` names (``"auto"``: ``OUT/last.pt``), or ``None``."""
    if not spec.resume:
        return None
    return os.path.join(spec.train.out_dir, "last.pt") if spec.resume == "auto" else spec.resume


def _train(spec, device, info, folder):
    """:func:`run_train` once the device and the run folder are settled."""
    from ..errors import MethodMismatchError, ResumeMismatchError
    from .resume import check_resumed_spec, resume_error, write_spec

    path = resume_path(spec)
    trainer, teacher_rows = build_trainer(spec, device, info, folder)
    meta, num_classes = trainer.meta, trainer.meta["num_classes"]
    if path is not None:
        try:
            trainer.resume(path)  # refuses a corrupted checkpoint first, then other settings
        except ResumeMismatchError as exc:
            check_resumed_spec(path, spec)  # the differences by option name, from the saved spec
            raise resume_error(exc, path) from exc
        except MethodMismatchError as exc:
            raise resume_error(exc, path) from exc
        check_resumed_spec(path, spec)  # options the checkpoint does not record
    if info.is_main:
        write_spec(spec, spec.train.out_dir)
        print(
            f"{spec.model.arch}: {meta['parameters'] / 1e6:.2f} M parameters, {num_classes} classes, "
            f"{info.world_size} process(es) on {device}; run folder {spec.train.out_dir}",
            flush=True,
        )
    trainer.fit()
    if info.is_main:
        print(format_table([*teacher_rows, (spec.model.arch, meta["parameters"], trainer.history[-1])]))
    return trainer
