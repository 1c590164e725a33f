"""The schedule of rolling back (:class:`RollbackSchedule`): its periods, epochs and learning rates, and their
checks. The method that runs it is :class:`~ptl_ext.train.rolling_back.RollingBack`.

Training runs in periods:

- period 1 fine-tunes everything (backbone ``lr``, head ``first_head_lr``);
- period ``p >= 2`` keeps ``B1..B(p-1)`` and the head, rolls ``B(p)..BN`` back to the pre-trained
  weights (BatchNorm running statistics included) and starts a fresh optimizer (no momentum) with
  ``kept_lr`` for the kept blocks and ``lr`` for the rolled-back blocks and the head;
- inside every period the learning rates are multiplied by ``gamma`` at ``decay_epoch``.

Each period has its own full schedule (the paper: 4 periods of 40 epochs, x0.1 at epoch 20 of each,
160 epochs against a 40-epoch baseline); :meth:`RollbackSchedule.within` instead splits one epoch budget
equally between the periods (an equal-budget comparison). Two variants of the schedule:

- ``keep=i`` (the paper's Table 1): two periods; period 2 keeps only ``Bi`` (and the head) and rolls
  every other block back;
- ``restore=False`` (the paper's Figure-4 control "base_cy"): the same periods, fresh optimizers and
  learning rates, nothing rolled back, so a gain of rolling back can be told apart from training longer
  with learning-rate restarts.
"""

from dataclasses import dataclass

from .. import _checks

__all__ = ["RollbackSchedule"]


@dataclass
class RollbackSchedule:
    """Periods, epochs and learning rates of rolling back (the paper's defaults).

    ``lr``: backbone and side stream in period 1, rolled-back blocks, head and side stream later;
    ``first_head_lr``: head in period 1; ``kept_lr``: kept blocks in periods ``>= 2``; ``gamma`` applies
    at period-local epoch ``decay_epoch`` (default ``epochs_per_period // 2``). Every period has its own
    ``epochs_per_period`` epochs (see :meth:`within` for an equal share of one budget).

    ``keep``: ``None`` (the paper's incremental scheme: period ``p`` keeps ``B1..B(p-1)``) or a 1-based
    block ``i`` (the paper's Table 1: two periods, period 2 keeps only ``Bi``). ``restore=False`` is the
    paper's "base_cy" control: the same periods, rates and fresh optimizers, no weights rolled back.
    """

    periods: int = 4
    epochs_per_period: int = 40
    decay_epoch: int = None
    lr: float = 0.01
    first_head_lr: float = 0.1
    kept_lr: float = 0.001
    gamma: float = 0.1
    keep: int = None
    restore: bool = True

    def __post_init__(self):
        for name in ("periods", "epochs_per_period"):
            _checks.positive_int(getattr(self, name), f"RollbackSchedule.{name}")
        if self.decay_epoch is None:
            self.decay_epoch = max(1, self.epochs_per_period // 2)
        _checks.positive_int(self.decay_epoch, "RollbackSchedule.decay_epoch")
        for name in ("lr", "first_head_lr", "kept_lr", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"RollbackSchedule.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.keep is not None:
            if isinstance(self.keep, bool) or not isinstance(self.keep, int) or self.keep < 1:
                raise ValueError(
                    f"RollbackSchedule.keep must be a positive int (a 1-based block) or None, got {self.keep!r}"
                )
            if self.periods != 2:
                raise ValueError(
                    f"RollbackSchedule.keep: keeping one block is a two-period scheme, got periods={self.periods}"
                )
        if not isinstance(self.restore, bool):
            raise ValueError(f"RollbackSchedule.restore must be true or false, got {self.restore!r}")

    @classmethod
    def within(cls, total_epochs, periods=4, **fields):
        """The schedule that splits ``total_epochs`` equally between ``periods`` (the equal-budget mode).

        Raises ``ValueError`` when ``total_epochs`` is not a positive multiple of ``periods``.
        """
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < periods:
            raise ValueError(f"rolling back: an epoch budget of {total_epochs!r} cannot hold {periods} periods")
        if total_epochs % periods:
            raise ValueError(
                f"rolling back: an epoch budget of {total_epochs} is not a multiple of the {periods} periods"
            )
        return cls(periods=periods, epochs_per_period=total_epochs // periods, **fields)

    @property
    def total_epochs(self):
        """``periods · epochs_per_period``."""
        return self.periods * self.epochs_per_period

    def period_of(self, epoch):
        """1-based period of the 0-based ``epoch``."""
        return epoch // self.epochs_per_period + 1

    def rollback_at(self, epoch):
        """The period that starts (with a roll-back, or with its restart under ``restore=False``) at the
        0-based ``epoch``, else ``None``."""
        period = self.period_of(epoch)
        return period if period >= 2 and epoch % self.epochs_per_period == 0 else None

    def kept(self, period, num_blocks):
        """The 1-based blocks that continue (are not rolled back) in ``period``."""
        if period == 1:
            return set(range(1, num_blocks + 1))
        if self.keep is not None:
            return {self.keep}
        return set(range(1, min(period, num_blocks + 1)))

    def rolled_back(self, period, num_blocks):
        """The 1-based blocks rolled back at the start of ``period`` (none in period 1 and with ``restore=False``)."""
        if period == 1 or not self.restore:
            return set()
        return set(range(1, num_blocks + 1)) - self.kept(period, num_blocks)

    def group_lrs(self, period, num_blocks):
        """Learning rates ``{"B1": .., ..., "side": .., "head": ..}`` at the start of ``period``."""
        if period == 1:
            lrs = {f"B{i}": self.lr for i in range(1, num_blocks + 1)}
            return {**lrs, "side": self.lr, "head": self.first_head_lr}
        kept = self.kept(period, num_blocks)
        lrs = {f"B{i}": self.kept_lr if i in kept else self.lr for i in range(1, num_blocks + 1)}
        return {**lrs, "side": self.lr, "head": self.lr}
