"""``ptl train``: the checked options' :class:`~ptl_ext.runs.RunSpec` run by :mod:`ptl_ext.runs`, or only
printed (``--dry-run``); a config file's paper numbers printed beside the final ones."""

import os

from .report import format_settings, paper_comparison, pretrained_note, write_paper_csv


def run_train(args):
    """Train as ``args`` (of :func:`~ptl_ext.cli.parse_args`) says; returns the trainer (the last step's with
    ``--chain``), or ``None`` with ``--dry-run`` (:func:`dry_run`).

    A config file's paper numbers are printed beside the final ones and written to ``OUT/paper.csv``.
    """
    from ..runs.chain import run_chain
    from ..runs.train import run_train as run

    if args.dry_run:
        return dry_run(args)
    note = pretrained_note(args)
    if note and int(os.environ.get("RANK", "0")) == 0:
        print(note, flush=True)
    trainer = run_chain(args.spec)[-1] if args.chain else run(args.spec)
    report_paper(args, trainer, f"{args.arch} chain {args.chain}" if args.chain else args.arch)
    return trainer


def run_chain(args):
    """``ptl train --chain``: :func:`ptl_ext.runs.chain.run_chain` of ``args.spec``; returns the trainers."""
    from ..runs.chain import run_chain as run

    return run(args.spec)


def dry_run(args):
    """``--dry-run``: check what can be checked without data (device, ``--chain``), print the resolved
    settings as TOML (with the paper's numbers) and return ``None``; reads no data, builds no network."""
    from ..runs.chain import parse_chain
    from ..runs.device import select_device

    if args.device is not None:
        select_device(args.device)
    steps = parse_chain(args.chain, args.root or "--root") if args.chain else [(args.dataset, args.root)]
    print(format_settings(args))
    print(f"# {epoch_cost_line(args.spec, [name for name, _ in steps])}")
    note = pretrained_note(args)
    if note:
        print(note)


def epoch_cost_line(spec, datasets):
    """The H200 time of one epoch of the run ``spec`` (a :class:`~ptl_ext.runs.RunSpec`) on each of
    ``datasets`` (:mod:`ptl_ext.step_time`), as one line of text."""
    from ..step_time import describe_epoch_cost

    data, method = spec.data, spec.method
    batch = data.p * data.k if spec.task == "reid" and data.sampler == "pk" else data.batch_size
    epochs = spec.train.epochs
    if method.rollback_periods and method.rollback_budget != "shared":
        epochs = method.rollback_periods * method.period_epochs
    line = describe_epoch_cost(spec.model.arch, batch, spec.height, spec.width, datasets, epochs)
    if method.teacher:
        line += "; STD adds the teacher's forward pass to every step (not measured)"
    return line


def report_paper(args, trainer, name):
    """Rank 0: the run's final metrics beside ``args.paper`` (console table and ``OUT/paper.csv``)."""
    if not getattr(args, "paper", None) or not trainer.info.is_main:
        return
    table, rows = paper_comparison(name, trainer.meta["parameters"], trainer.history[-1], args.paper)
    print(f"\nours beside the paper:\n{table}", flush=True)
    write_paper_csv(os.path.join(args.out, "paper.csv"), rows)
