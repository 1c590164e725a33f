"""The wiring of one ``ptl train`` run: device, data, network, loss, method and the Trainer.

Each function takes the checked namespace of :func:`ptl_ext.cli.options.parse_args` and builds one
piece; :func:`run_train` puts them together, trains, and prints the summary table.
"""

import os

from .options import OptionError
from .report import format_settings, format_table, paper_comparison, pretrained_note, write_paper_csv


def select_device(name):
    """``torch.device`` for ``--device`` (default: CUDA when available)."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: CUDA is not available")
    return device


def build_loss(args):
    """The supervised loss of the run: MGN's, CE (+ triplet) for ReID, or CE for classification."""
    from ..train import ClassificationLoss, MGNLoss, ReIDLoss

    margin = None if args.triplet_margin < 0 else args.triplet_margin  # negative: soft margin
    if args.loss == "mgn":
        return MGNLoss(margin, args.triplet_weight, label_smoothing=args.label_smoothing)
    if args.task == "reid":
        return ReIDLoss(args.label_smoothing, args.triplet_weight, margin)
    return ClassificationLoss(args.label_smoothing)


def input_size(args):
    """``(H, W)`` of the run's images (resolved by :func:`~ptl_ext.cli.options.resolve_train_options`)."""
    return args.height, args.width


def build_model(args, num_classes, size):
    """The network of ``--arch`` with its starting weights (``--pretrained`` or ``--init-from``).

    A dry forward at ``size`` checks that the images are large enough for the network.
    """
    import torch

    from ..models import create_model
    from ..nn import set_state_mode
    from ..train.checkpoint import load_weights_except_head

    torch.manual_seed(args.seed)
    try:
        model = create_model(
            args.arch,
            num_classes,
            size,
            head=args.head,
            pretrained=args.pretrained,
            last_stride=args.last_stride,
            dropout=args.dropout,
            side_width=args.side_width,
        )
        _dry_run(model, size)
    except RuntimeError as exc:
        if "size" not in str(exc):
            raise
        raise OptionError(
            f"--height/--width {size[0]}x{size[1]}: the images are too small for --arch {args.arch} "
            f"({str(exc).splitlines()[0]})"
        ) from None
    if args.cell_state != "carry":
        set_state_mode(model, args.cell_state)
    if args.init_from and not args.resume:  # a resume restores the weights (and the rollback snapshot) anyway
        load_weights_except_head(model, args.init_from, "--init-from")
    return model


def _dry_run(model, size):
    """One eval-mode forward of a zero image of ``size`` (cells start from zeros and keep no state)."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *size))
    finally:
        model.train()


def train_config(args, title, **overrides):
    """The :class:`~ptl_ext.train.TrainConfig` of a ``ptl train`` namespace (``overrides`` replace fields)."""
    from ..train import TrainConfig

    fields = {
        name: getattr(args, name)
        for name in (
            "epochs",
            "lr",
            "head_lr",
            "momentum",
            "nesterov",
            "weight_decay",
            "step_size",
            "gamma",
            "optimizer",
            "adam_beta1",
            "adam_beta2",
            "warmup_epochs",
            "warmup_factor",
            "amp",
            "eval_every",
            "save_every",
            "progress",
            "overwrite",
        )
    }
    return TrainConfig(**{**fields, "out_dir": args.out, "title": title, **overrides})


def run_train(args):
    """Train as ``args`` says (see ``ptl train --help``); returns the trainer (rank 0 prints a summary).

    With ``--chain`` runs :func:`ptl_ext.cli.chain.run_chain` and returns its last trainer. ``--dry-run``
    only prints the resolved settings (:func:`dry_run`) and returns ``None``. The run folder is checked
    and locked before any data is read. A config file's paper numbers are printed beside the final ones
    and written to ``OUT/paper.csv``.
    """
    if args.dry_run:
        return dry_run(args)
    note = pretrained_note(args)
    if note and int(os.environ.get("RANK", "0")) == 0:
        print(note, flush=True)
    if args.chain:
        from .chain import run_chain

        trainer = run_chain(args)[-1]
        report_paper(args, trainer, f"{args.arch} chain {args.chain}")
        return trainer
    import torch

    from ..errors import RunFolderError
    from ..train import RunFolder, init_distributed

    device = select_device(args.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.distributed:
        device = torch.device("cuda", info.local_rank)
    if info.distributed:  # every rank opens the folder through the Trainer, which agrees on the outcome
        return _train(args, device, info, None)
    folder = RunFolder(args.out, resume=bool(args.resume), overwrite=args.overwrite)
    try:
        folder.acquire()
    except RunFolderError as exc:
        held = os.path.isdir(args.out) and folder.run_files() and not (args.resume or args.overwrite)
        raise RunFolderError(f"{exc}{' (--resume continues it, --overwrite replaces it)' if held else ''}") from None
    with folder:
        return _train(args, device, info, folder)


def build_trainer(args, device, info, folder=None, *, evaluate_teacher=True, **config_overrides):
    """The :class:`~ptl_ext.train.Trainer` of a ``ptl train`` namespace, ready to fit: ``(trainer, teacher_rows)``.

    Data, network (with its starting weights), loss, training methods (STD, rolling back), config and
    meta, in the order that fixes the random streams. ``evaluate_teacher=False`` skips the STD teacher's
    evaluation (``teacher_rows`` is then empty); ``config_overrides`` replace :func:`train_config` fields.
    """
    import torch

    from ..models import count_parameters
    from ..train import Trainer
    from ..train.tensorboard import TensorBoardHook
    from .dataset import build_data
    from .methods import rollback_hook, std_method
    from .resume import run_meta

    size = input_size(args)
    train_loader, evaluator, num_classes, protocol = build_data(args, info, *size)
    model = build_model(args, num_classes, size)
    torch.manual_seed(args.seed + 1000 * info.rank)  # ranks augment differently
    std, teacher_rows = std_method(args, model, evaluator, size, device, info, evaluate=evaluate_teacher)
    methods = [method for method in (std, rollback_hook(args, model)) if method is not None]
    title = config_overrides.pop("title", f"{args.arch} on {args.dataset}")
    config = train_config(args, title, **config_overrides)
    meta = run_meta(args, num_classes, protocol, count_parameters(model))
    if teacher_rows:
        meta["teacher"] = {"checkpoint": os.path.abspath(args.teacher), "metrics": teacher_rows[0][2]}
    hooks = [TensorBoardHook()] if args.tensorboard else []
    trainer = Trainer(
        model,
        train_loader,
        config,
        evaluator=evaluator,
        loss_fn=build_loss(args),
        method=methods,
        hooks=hooks,
        device=device,
        info=info,
        meta=meta,
        run_folder=folder,
    )
    return trainer, teacher_rows


def _train(args, device, info, folder):
    """:func:`run_train` once the device and the run folder are settled."""
    from ..errors import MethodMismatchError, ResumeMismatchError
    from .resume import resume_error

    trainer, teacher_rows = build_trainer(args, device, info, folder)
    meta, num_classes = trainer.meta, trainer.meta["num_classes"]
    if args.resume:
        path = os.path.join(args.out, "last.pt") if args.resume == "auto" else args.resume
        try:
            trainer.resume(path)
        except (MethodMismatchError, ResumeMismatchError) as exc:
            raise resume_error(exc, path) from exc
    if info.is_main:
        print(
            f"{args.arch}: {meta['parameters'] / 1e6:.2f} M parameters, {num_classes} classes, "
            f"{info.world_size} process(es) on {device}; run folder {args.out}",
            flush=True,
        )
    trainer.fit()
    if info.is_main:
        print(format_table([*teacher_rows, (args.arch, meta["parameters"], trainer.history[-1])]))
    report_paper(args, trainer, args.arch)
    return trainer


def dry_run(args):
    """``--dry-run``: check what can be checked without data (device, ``--chain``), print the resolved
    settings as TOML (with the paper's numbers) and return ``None``; reads no data, builds no network."""
    from .chain import parse_chain

    if args.device is not None:
        select_device(args.device)
    if args.chain:
        parse_chain(args.chain, args.root or "--root")
    print(format_settings(args))
    note = pretrained_note(args)
    if note:
        print(note)


def report_paper(args, trainer, name):
    """Rank 0: the run's final metrics beside ``args.paper`` (console table and ``OUT/paper.csv``)."""
    if not getattr(args, "paper", None) or not trainer.info.is_main:
        return
    table, rows = paper_comparison(name, trainer.meta["parameters"], trainer.history[-1], args.paper)
    print(f"\nours beside the paper:\n{table}", flush=True)
    write_paper_csv(os.path.join(args.out, "paper.csv"), rows)
