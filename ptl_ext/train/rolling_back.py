"""Rolling-back refine-tuning ("Backbone Can Not be Trained at Once", Hu et al.).

The backbone is split into blocks ``B1..BN``, which each network names with its ``rollback_blocks()``
method (ResNet: ``B1 = conv1 + bn1``, ``B2..B5 = layer1..layer4``; DenseNet: the stem, then each dense
block with its transition; :class:`~ptl_ext.models.PTLNet` and :class:`~ptl_ext.models.BackboneNet`: their
``stages``). Training runs in periods:

- period 1 fine-tunes everything (backbone ``lr``, head ``first_head_lr``);
- period ``p >= 2`` keeps ``B1..B(p-1)`` and the head, rolls ``B(p)..BN`` back to the pre-trained
  weights (BatchNorm running statistics included) and starts a fresh optimizer (no momentum) with
  ``kept_lr`` for the kept blocks and ``lr`` for the rolled-back blocks and the head;
- inside every period the learning rates are multiplied by ``gamma`` at ``decay_epoch``.

The head and the PTL side stream (cells and fuse blocks: parameters in no block and not in the head)
are never rolled back; our reading trains the side stream at ``lr`` in every period.

Hand a :class:`RollbackHook` to a :class:`~ptl_ext.train.Trainer` as its training method (it brings the
hook, the optimizer factory and the number of epochs)::

    method = RollbackHook(model, RollbackSchedule(periods=4, epochs_per_period=40))
    Trainer(model, loader, TrainConfig(...), method=method)

Every optimizer has the same parameter groups (``B1..BN``, ``side`` when present, ``head``), so a
checkpoint of any period resumes exactly; the hook's checkpointed state holds the pre-trained weights.
"""

from dataclasses import asdict, dataclass

import torch

from .. import _checks
from .hooks import Hook
from .method import TrainingMethod
from .optim import make_optimizer

__all__ = [
    "RollbackSchedule",
    "RollbackHook",
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
def rollback(model, pretrained, blocks, first):
    """Restore blocks ``B(first)..BN`` (1-based ``first``) of ``model`` in place from ``pretrained``.

    Args:
        model: the network; its parameters keep their identity (values copied in).
        pretrained: :func:`pretrained_snapshot` of the blocks (``{name: tensor}``).
        blocks: the block list (see :func:`default_blocks`).
        first: 1-based index of the first rolled-back block.
    Returns:
        the names restored (parameters and buffers), in ``state_dict`` order.
    """
    if not 1 <= first <= len(blocks):
        raise ValueError(f"rollback: first must be in 1..{len(blocks)}, got {first!r}")
    restored = []
    for name, value in model.state_dict().items():
        index = _block_of(name, blocks)
        if index is None or index + 1 < first:
            continue
        if name not in pretrained:
            raise KeyError(f"rollback: the pre-trained snapshot has no entry {name}")
        value.copy_(pretrained[name])
        restored.append(name)
    return restored


@dataclass
class RollbackSchedule:
    """Periods, epochs and learning rates of rolling back (the paper's defaults).

    ``lr``: backbone and side stream in period 1, rolled-back blocks, head and side stream later;
    ``first_head_lr``: head in period 1; ``kept_lr``: kept blocks in periods ``>= 2``; ``gamma`` applies
    at period-local epoch ``decay_epoch`` (default ``epochs_per_period // 2``).
    """

    periods: int = 4
    epochs_per_period: int = 40
    decay_epoch: int = None
    lr: float = 0.01
    first_head_lr: float = 0.1
    kept_lr: float = 0.001
    gamma: float = 0.1

    def __post_init__(self):
        for name in ("periods", "epochs_per_period"):
            _checks.positive_int(getattr(self, name), f"RollbackSchedule.{name}")
        if self.decay_epoch is None:
            self.decay_epoch = max(1, self.epochs_per_period // 2)
        _checks.positive_int(self.decay_epoch, "RollbackSchedule.decay_epoch")
        for name in ("lr", "first_head_lr", "kept_lr", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"RollbackSchedule.{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def total_epochs(self):
        """``periods · epochs_per_period``."""
        return self.periods * self.epochs_per_period

    def period_of(self, epoch):
        """1-based period of the 0-based ``epoch``."""
        return epoch // self.epochs_per_period + 1

    def rollback_at(self, epoch):
        """The period that starts with a roll-back at the 0-based ``epoch``, else ``None``."""
        period = self.period_of(epoch)
        return period if period >= 2 and epoch % self.epochs_per_period == 0 else None

    def group_lrs(self, period, num_blocks):
        """Learning rates ``{"B1": .., ..., "side": .., "head": ..}`` at the start of ``period``."""
        if period == 1:
            lrs = {f"B{i}": self.lr for i in range(1, num_blocks + 1)}
            return {**lrs, "side": self.lr, "head": self.first_head_lr}
        lrs = {f"B{i}": self.kept_lr if i < period else self.lr for i in range(1, num_blocks + 1)}
        return {**lrs, "side": self.lr, "head": self.lr}


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


class RollbackHook(Hook, TrainingMethod):
    """The rolling-back training method: a trainer hook running a :class:`RollbackSchedule` on ``model``.

    Snapshots the blocks' current weights and BN buffers as the pre-trained state (build the hook
    before training). Pass it as ``Trainer(..., method=hook)``: the trainer then uses its hook, its
    :meth:`optimizer_factory` and ``schedule.total_epochs`` epochs. At the first epoch of each period
    ``p >= 2`` it rolls ``B(p)..BN`` back and installs a fresh optimizer. Every metrics row gets ``period``;
    the first row of a period ``p >= 2`` also gets ``rollback = p`` (the first rolled-back block), which
    ``curves.png`` marks.

    Args:
        model: the unwrapped network (pre-trained weights loaded).
        schedule: :class:`RollbackSchedule` (default: the paper's).
        blocks: block list (default :func:`default_blocks`); validated by :func:`check_blocks`.
    """

    def __init__(self, model, schedule=None, blocks=None):
        self.schedule = RollbackSchedule() if schedule is None else schedule
        if not isinstance(self.schedule, RollbackSchedule):
            raise TypeError(f"schedule must be a RollbackSchedule, got {type(self.schedule).__name__}")
        self.model = model
        self.blocks = check_blocks(model, default_blocks(model) if blocks is None else blocks, self.schedule.periods)
        self.pretrained = pretrained_snapshot(model, self.blocks)

    name = "rolling_back"

    def optimizer_factory(self, model, config):
        """The trainer's ``optimizer_factory``: period 1's optimizer and schedule."""
        return rollback_optimizer(model, self.blocks, self.schedule, 1, config)

    def hooks(self):
        """The method's hooks: this hook."""
        return [self]

    def epochs(self):
        """``schedule.total_epochs``: the trainer runs every period."""
        return self.schedule.total_epochs

    def settings(self):
        """The schedule and the block list (a resume with others is refused)."""
        return {**asdict(self.schedule), "blocks": self.blocks}

    def on_fit_start(self, trainer):
        if trainer.config.epochs != self.schedule.total_epochs:
            raise ValueError(
                f"rolling back: TrainConfig.epochs must be periods x epochs_per_period = "
                f"{self.schedule.total_epochs}, got {trainer.config.epochs} (pass the hook as "
                "Trainer(..., method=hook) to have it set)"
            )
        if trainer.module is not self.model:
            raise ValueError("rolling back: the hook was built for another model than the trainer's")
        groups = [group.get("name") for group in trainer.optimizer.param_groups]
        if not groups or groups[0] != "B1":
            raise ValueError(
                "rolling back: build the Trainer with method=hook (or with optimizer_factory=hook.optimizer_factory)"
            )

    def on_epoch_start(self, trainer, epoch):
        period = self.schedule.rollback_at(epoch)
        if period is not None:
            rollback(self.model, self.pretrained, self.blocks, period)
            trainer.set_optimizer(*rollback_optimizer(self.model, self.blocks, self.schedule, period, trainer.config))

    def on_epoch_end(self, trainer, epoch, row):
        row["period"] = self.schedule.period_of(epoch)
        if self.schedule.rollback_at(epoch) is not None:
            row["rollback"] = row["period"]

    def state_dict(self):
        return {"pretrained": self.pretrained, "schedule": asdict(self.schedule), "blocks": self.blocks}

    def load_state_dict(self, state):
        if state.get("schedule") != asdict(self.schedule) or state.get("blocks") != self.blocks:
            raise ValueError(
                f"rolling back: the checkpoint was written with schedule {state.get('schedule')} and "
                f"blocks {state.get('blocks')}, this run has {asdict(self.schedule)} and {self.blocks}"
            )
        if set(state["pretrained"]) != set(self.pretrained):
            raise ValueError("rolling back: the checkpoint's pre-trained snapshot does not fit this model's blocks")
        self.pretrained = {name: value.to(self.pretrained[name].device) for name, value in state["pretrained"].items()}
