"""Chained fine-tuning (``ptl train --chain duke,market,msmt17``): one run per dataset, each from the last."""

import copy
import os

from .options import OptionError
from .report import format_table


def parse_chain(spec, root):
    """The steps ``[(dataset, folder), ...]`` of a ``--chain`` value ``NAME[=FOLDER],NAME[=FOLDER],...``.

    ``NAME`` is a dataset name or alias (``duke``, ``market`` ...); a step without a folder reads ``root``
    (the parent folder of the datasets).
    """
    from ..data import get_dataset

    steps = []
    for item in spec.split(","):
        name, has_folder, folder = item.strip().partition("=")
        try:
            name = get_dataset(name).name
        except ValueError as exc:
            raise OptionError(f"--chain: unknown dataset {name!r}: {exc}") from None
        folder = folder if has_folder else root
        if not folder:
            raise OptionError(f"--chain: step {name} has no folder: give --root or {name}=FOLDER")
        steps.append((name, folder))
    return steps


def run_chain(args):
    """Train each step of ``--chain`` in turn from the previous step's ``last.pt`` (backbone and cells kept,
    a new head for the new identities); returns the trainers.

    Step ``i`` writes to ``OUT/i_NAME``; ``--resume`` resumes every step from its own ``last.pt`` (a
    finished step is not trained again). ``--init-from`` initialises the first step.
    """
    import torch

    from .run import run_train

    if args.resume not in (None, "auto"):
        raise OptionError("--chain resumes each step from its own last.pt: give --resume without a value")
    steps = parse_chain(args.chain, args.root)
    trainers, rows, init_from = [], [], args.init_from
    for i, (name, root) in enumerate(steps, start=1):
        out = os.path.join(args.out, f"{i}_{name}")
        step = copy.copy(args)
        step.chain, step.dataset, step.root, step.out, step.init_from = None, name, root, out, init_from
        step.paper = None  # the paper's numbers are for the whole chain: compared once, after the last step
        step.resume = "auto" if args.resume and os.path.isfile(os.path.join(out, "last.pt")) else None
        print(f"\n== chain step {i}/{len(steps)}: {name} ({root})", flush=True)
        trainer = run_train(step)
        if trainer.info.distributed:
            torch.distributed.barrier()  # rank 0 has written last.pt before the next step reads it
        init_from = trainer.path("last.pt")
        trainers.append(trainer)
        rows.append((f"{i}. {name}", trainer.meta["parameters"], trainer.history[-1]))
    if trainers[-1].info.is_main:
        print(f"\nchain {' -> '.join(name for name, _ in steps)}:\n{format_table(rows)}")
    return trainers
