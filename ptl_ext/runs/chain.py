"""Chained fine-tuning (``chain = "duke,market,msmt17"``): one run per dataset, each from the last."""

import os

from ..errors import OptionError
from .report import format_table


def parse_chain(chain, root):
    """The steps ``[(dataset, folder), ...]`` of a ``chain`` value ``NAME[=FOLDER],NAME[=FOLDER],...``.

    ``NAME`` is a dataset name or alias (``duke``, ``market`` ...); a step without a folder reads ``root``
    (the parent folder of the datasets).
    """
    from ..data import get_dataset

    steps = []
    for item in chain.split(","):
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


def chain_steps(spec):
    """``[(name, RunSpec of the step)]``: step ``i`` writes to ``OUT/i_NAME`` and starts from the previous
    step's ``last.pt`` (the first from ``init_from``); with ``resume`` a step resumes from its own ``last.pt``
    when it has one."""
    if spec.resume not in (None, "auto"):
        raise OptionError("--chain resumes each step from its own last.pt: give --resume without a value")
    steps, init_from = [], spec.model.init_from
    for i, (name, root) in enumerate(parse_chain(spec.method.chain, spec.root), start=1):
        out = os.path.join(spec.train.out_dir, f"{i}_{name}")
        resume = "auto" if spec.resume and os.path.isfile(os.path.join(out, "last.pt")) else None
        steps.append(
            (name, spec.replace(chain=None, dataset=name, root=root, out=out, init_from=init_from, resume=resume))
        )
        init_from = os.path.join(out, "last.pt")
    return steps


def run_chain(spec):
    """Train each step of ``spec.method.chain`` in turn from the previous step's ``last.pt`` (backbone and
    cells kept, a new head for the new identities); returns the trainers."""
    import torch

    from .train import run_train

    steps = chain_steps(spec)
    trainers, rows = [], []
    for i, (name, step) in enumerate(steps, start=1):
        print(f"\n== chain step {i}/{len(steps)}: {name} ({step.root})", flush=True)
        trainer = run_train(step)
        if trainer.info.distributed:
            torch.distributed.barrier()  # rank 0 has written last.pt before the next step reads it
        trainers.append(trainer)
        rows.append((f"{i}. {name}", trainer.meta["parameters"], trainer.history[-1]))
    if trainers[-1].info.is_main:
        print(f"\nchain {' -> '.join(name for name, _ in steps)}:\n{format_table(rows)}")
    return trainers
