"""Rolling-back refine-tuning ("Backbone Can Not be Trained at Once", Hu et al.): the blocks, the roll-back,
the optimizer of a period, the trainer hook and the training method.

The backbone is split into blocks ``B1..BN``, which each network names with its ``rollback_blocks()``
method (ResNet: ``B1 = conv1 + bn1``, ``B2..B5 = layer1..layer4``; DenseNet: the stem, then each dense
block with its transition; :class:`~ptl_ext.models.PTLNet` and :class:`~ptl_ext.models.BackboneNet`: their
``stages``). Training runs in periods, each of which may roll later blocks back to the pre-trained weights
and starts a fresh optimizer: :class:`~ptl_ext.train.rollback_schedule.RollbackSchedule` (its module
describes the periods, the learning rates and the ``keep`` / ``restore`` variants; re-exported here).

The head and the PTL side stream (cells and fuse blocks: parameters in no block and not in the head)
are never rolled back; our reading trains the side stream at ``lr`` in every period.

:class:`RollingBack` is the training method handed to a :class:`~ptl_ext.train.Trainer` (it brings its
:class:`RollbackHook`, the optimizer factory and the number of epochs)::

    method = RollingBack(model, RollbackSchedule(periods=4, epochs_per_period=40))
    Trainer(model, loader, TrainConfig(...), method=method)

Every optimizer has the same parameter groups (``B1..BN``, ``side`` when present, ``head``), so a
checkpoint of any period resumes exactly; the hook's checkpointed state holds the pre-trained weights.
"""

from dataclasses import asdict

import torch

from .hooks import Hook
from .method import TrainingMethod
from .optim import make_optimizer
from .rollback_schedule import RollbackSchedule

__all__ = [
    "RollbackSchedule",
    "RollbackHook",
    "RollingBack",
    "default_blocks",
    "head_prefix",
    "check_blocks",
    "rollback",
    "pretrained_snapshot",
    "rollback_optimizer",
]


def default_blocks(model):
    """The blocks ``B1..BN`` of ``model`` as lists of module-name prefixes, as the network describes them
    (its ``rollback_blocks()`` method).

    ResNet: ``[["conv1", "bn1"], ["layer1"], ..., ["layer4"]]``; DenseNet: the stem and each dense block
    with its transition (the last with ``norm5``) under ``features.``; ``PTLNet`` and ``BackboneNet``:
    ``[["stages.0"], ["stages.1"], ...]``. Raises ``TypeError`` for a network without default blocks
    (MGN, foreign modules): pass ``blocks=`` then.
    """
    describe = getattr(model, "rollback_blocks", None)
    if not callable(describe):
        raise TypeError(f"rolling back: no default blocks for {type(model).__name__}; pass blocks=[[prefix, ...], ...]")
    return describe()


def head_prefix(model):
    """Module name of ``model``'s classifier: the network's ``head_name`` (``head`` for ptl_ext networks,
    ``fc`` for ResNet, ``classifier`` for DenseNet), else the first of ``head``, ``fc``, ``classifier`` it has."""
    name = getattr(model, "head_name", None)
    if isinstance(name, str):
        return name
    for name in ("head", "fc", "classifier"):
        if isinstance(getattr(model, name, None), torch.nn.Module):
            return name
    raise TypeError(f"rolling back: {type(model).__name__} has no head, fc or classifier module")


def _matches(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def check_blocks(model, blocks, periods=None):
    """Validate a block list (see :func:`default_blocks`) against ``model``; returns it as a list of lists.

    A block is a list of module-name prefixes (a single name is accepted for a one-module block).

    Raises ``ValueError`` when the list is empty, a block is empty or not a list of names, a prefix
    names no parameter of ``model``, two blocks share a parameter, a block holds the head, or there
    are fewer blocks than ``periods`` (period ``p`` rolls back ``B(p)..BN``, so ``p <= N``).
    """
    if isinstance(blocks, (str, bytes)) or not hasattr(blocks, "__iter__"):
        raise ValueError(f"blocks must be a list of lists of module names, got {blocks!r}")
    blocks = [[block] if isinstance(block, str) else block for block in blocks]
    if not blocks:
        raise ValueError("blocks must hold at least one block")
    names = [name for name, _ in model.named_parameters()]
    head = head_prefix(model)
    owner = {}
    for index, block in enumerate(blocks, start=1):
        if isinstance(block, (bytes, dict)) or not hasattr(block, "__iter__"):
            raise ValueError(f"blocks: B{index} must be a list of module names, got {block!r}")
        block = list(block)
        if not block or not all(isinstance(prefix, str) and prefix for prefix in block):
            raise ValueError(f"blocks: B{index} must be a non-empty list of module names, got {block!r}")
        for prefix in block:
            if _matches(prefix, head) or _matches(head, prefix):
                raise ValueError(
                    f"blocks: B{index} prefix {prefix!r} holds the head {head!r}, which is never rolled back"
                )
            found = [n for n in names if _matches(n, prefix)]
            if not found:
                raise ValueError(f"blocks: B{index} prefix {prefix!r} names no parameter of {type(model).__name__}")
            for n in found:
                if n in owner:
                    raise ValueError(f"blocks: parameter {n} is in both B{owner[n]} and B{index}")
                owner[n] = index
    blocks = [list(block) for block in blocks]
    if periods is not None and periods > len(blocks):
        raise ValueError(
            f"rolling back: periods ({periods}) must be <= the number of blocks ({len(blocks)}): "
            f"period p rolls back B(p)..B{len(blocks)}"
        )
    return blocks


def _block_of(name, blocks):
    """0-based index of the block holding parameter/buffer ``name``, or ``None``."""
    return next((i for i, block in enumerate(blocks) if any(_matches(name, p) for p in block)), None)


def pretrained_snapshot(model, blocks):
    """Copies of every parameter and buffer (BN running statistics too) of the blocks: ``{name: tensor}``."""
    return {
        name: value.detach().clone()
        for name, value in model.state_dict().items()
        if _block_of(name, blocks) is not None
    }


@torch.no_grad()
def rollback(model, pretrained, blocks, first=None, indices=None):
    """Restore blocks of ``model`` in place from ``pretrained``: ``B(first)..BN`` (1-based ``first``), or
    the 1-based ``indices`` given instead.

    Args:
        model: the network; its parameters keep their identity (values copied in).
        pretrained: :func:`pretrained_snapshot` of the blocks (``{name: tensor}``).
        blocks: the block list (see :func:`default_blocks`).
        first: 1-based index of the first rolled-back block (every later block is rolled back too).
        indices: the 1-based indices of the rolled-back blocks (instead of ``first``).
    Returns:
        the names restored (parameters and buffers), in ``state_dict`` order.
    """
    if (first is None) == (indices is None):
        raise ValueError("rollback: give first or indices (one of them)")
    if indices is None:
        if not 1 <= first <= len(blocks):
            raise ValueError(f"rollback: first must be in 1..{len(blocks)}, got {first!r}")
        indices = range(first, len(blocks) + 1)
    indices = set(indices)
    if not indices or not indices <= set(range(1, len(blocks) + 1)):
        raise ValueError(f"rollback: indices must be in 1..{len(blocks)}, got {sorted(indices)}")
    restored = []
    for name, value in model.state_dict().items():
        index = _block_of(name, blocks)
        if index is None or index + 1 not in indices:
            continue
        if name not in pretrained:
            raise KeyError(f"rollback: the pre-trained snapshot has no entry {name}")
        value.copy_(pretrained[name])
        restored.append(name)
    return restored


def rollback_optimizer(model, blocks, schedule, period, config):
    """A fresh optimizer (no momentum state) and its in-period ``MultiStepLR`` for ``period``.

    Groups ``B1..BN``, ``side`` (parameters in no block and not in the head; left out when empty) and
    ``head``, each with its :meth:`RollbackSchedule.group_lrs` rate; the optimiser (SGD by default) with its
    momentum or betas and weight decay comes from ``config`` (:class:`~ptl_ext.train.TrainConfig`, see
    :func:`~ptl_ext.train.optim.make_optimizer`).
    """
    head = head_prefix(model)
    names = [f"B{i}" for i in range(1, len(blocks) + 1)] + ["side", "head"]
    params = {name: [] for name in names}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        index = _block_of(name, blocks)
        group = f"B{index + 1}" if index is not None else ("head" if _matches(name, head) else "side")
        params[group].append(parameter)
    lrs = schedule.group_lrs(period, len(blocks))
    groups = [{"name": name, "params": params[name], "lr": lrs[name]} for name in names if params[name]]
    optimizer = make_optimizer(groups, config)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [schedule.decay_epoch], gamma=schedule.gamma)
    return optimizer, scheduler


class RollbackHook(Hook):
    """The trainer hook of rolling back: at the first epoch of each period ``p >= 2`` it rolls the period's
    blocks back (:meth:`RollbackSchedule.rolled_back`) and installs a fresh optimizer.

    Every metrics row gets ``period``; the first row of a period ``p >= 2`` also gets ``rollback = p``, which
    ``curves.png`` marks. Its checkpointed state holds the pre-trained weights. Built by
    :class:`RollingBack` (the training method), which also sets the trainer's optimizer and epochs.

    Args:
        model: the unwrapped network; ``blocks``: its checked block list; ``schedule``:
        :class:`RollbackSchedule`; ``pretrained``: :func:`pretrained_snapshot` of the blocks.
    """

    def __init__(self, model, blocks, schedule, pretrained):
        self.model, self.blocks, self.schedule, self.pretrained = model, blocks, schedule, pretrained

    def on_fit_start(self, trainer):
        if trainer.config.epochs != self.schedule.total_epochs:
            raise ValueError(
                f"rolling back: TrainConfig.epochs must be periods x epochs_per_period = "
                f"{self.schedule.total_epochs}, got {trainer.config.epochs} (pass RollingBack as "
                "Trainer(..., method=...) to have it set)"
            )
        if trainer.module is not self.model:
            raise ValueError("rolling back: the hook was built for another model than the trainer's")
        groups = [group.get("name") for group in trainer.optimizer.param_groups]
        if not groups or groups[0] != "B1":
            raise ValueError(
                "rolling back: build the Trainer with method=RollingBack(...) (or with its optimizer_factory)"
            )

    def on_epoch_start(self, trainer, epoch):
        period = self.schedule.rollback_at(epoch)
        if period is not None:
            indices = self.schedule.rolled_back(period, len(self.blocks))
            if indices:
                rollback(self.model, self.pretrained, self.blocks, indices=indices)
            trainer.set_optimizer(*rollback_optimizer(self.model, self.blocks, self.schedule, period, trainer.config))

    def on_epoch_end(self, trainer, epoch, row):
        row["period"] = self.schedule.period_of(epoch)
        if self.schedule.rollback_at(epoch) is not None and self.schedule.restore:
            row["rollback"] = row["period"]

    def state_dict(self):
        return {"pretrained": self.pretrained, "schedule": asdict(self.schedule), "blocks": self.blocks}

    def load_state_dict(self, state):
        saved = state.get("schedule")
        if isinstance(saved, dict):  # checkpoints older than keep / restore ran the paper's scheme
            saved = {"keep": None, "restore": True, **saved}
        if saved != asdict(self.schedule) or state.get("blocks") != self.blocks:
            raise ValueError(
                f"rolling back: the checkpoint was written with schedule {state.get('schedule')} and "
                f"blocks {state.get('blocks')}, this run has {asdict(self.schedule)} and {self.blocks}"
            )
        if set(state["pretrained"]) != set(self.pretrained):
            raise ValueError("rolling back: the checkpoint's pre-trained snapshot does not fit this model's blocks")
        self.pretrained = {name: value.to(self.pretrained[name].device) for name, value in state["pretrained"].items()}


class RollingBack(TrainingMethod):
    """The rolling-back training method: a :class:`RollbackSchedule` run on ``model`` by a :class:`RollbackHook`.

    Snapshots the blocks' current weights and BN buffers as the pre-trained state (build it before
    training). Pass it as ``Trainer(..., method=RollingBack(model, schedule))``: the trainer then uses its
    hook, its :meth:`optimizer_factory` and ``schedule.total_epochs`` epochs.

    Args:
        model: the unwrapped network (pre-trained weights loaded).
        schedule: :class:`RollbackSchedule` (default: the paper's).
        blocks: block list (default :func:`default_blocks`); validated by :func:`check_blocks`.
    """

    name = "rolling_back"

    def __init__(self, model, schedule=None, blocks=None):
        schedule = RollbackSchedule() if schedule is None else schedule
        if not isinstance(schedule, RollbackSchedule):
            raise TypeError(f"schedule must be a RollbackSchedule, got {type(schedule).__name__}")
        blocks = check_blocks(model, default_blocks(model) if blocks is None else blocks, schedule.periods)
        if schedule.keep is not None and schedule.keep > len(blocks):
            raise ValueError(f"rolling back: keep={schedule.keep} names no block (the network has {len(blocks)})")
        self.hook = RollbackHook(model, blocks, schedule, pretrained_snapshot(model, blocks))

    @property
    def schedule(self):
        return self.hook.schedule

    @property
    def blocks(self):
        return self.hook.blocks

    def optimizer_factory(self, model, config):
        """The trainer's ``optimizer_factory``: period 1's optimizer and schedule."""
        return rollback_optimizer(model, self.blocks, self.schedule, 1, config)

    def hooks(self):
        """The method's hooks: its :class:`RollbackHook`."""
        return [self.hook]

    def epochs(self):
        """``schedule.total_epochs``: the trainer runs every period."""
        return self.schedule.total_epochs

    def settings(self):
        """The schedule and the block list (a resume with others is refused)."""
        return {**asdict(self.schedule), "blocks": self.blocks}
