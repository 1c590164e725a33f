"""The settings of a training run: :class:`TrainConfig`, the one home of the trainer's defaults."""

import os
from dataclasses import dataclass

from .. import _checks

__all__ = ["CHECKPOINT_POLICIES", "OPTIMIZERS", "TrainConfig"]

CHECKPOINT_POLICIES = ("all", "final")
OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class TrainConfig(_checks.Sealed):
    """Optimisation and bookkeeping settings of a run (PTL defaults).

    ``head_lr=None`` trains the head at ``lr``; the learning-rate multipliers of a method that sets rates
    per layer group (rolling back) are ``head_lr_factor`` (a new head, when ``head_lr`` is not given: 10) and
    ``kept_lr_divisor`` (layers kept from a previous period learn at ``lr / kept_lr_divisor``: 10). The
    learning rate is multiplied by ``gamma`` every ``step_size`` epochs. ``eval_every`` evaluates every N
    epochs and always after the last (0 = only after the last); ``save_every`` writes ``last.pt`` likewise
    (and before every evaluation). ``checkpoints="final"`` writes only ``last.pt`` after the last epoch (no
    ``best.pt``, nothing around the evaluations): for throw-away runs such as the demo's; a run killed before
    its end cannot be resumed. ``amp`` autocasts to bfloat16 on CPU, float16 with loss scaling on CUDA.
    ``overwrite`` lets a new run replace the run already in ``out_dir`` (whose files are removed first);
    without it such a folder is refused unless the trainer resumes (a resume ignores ``overwrite``: it
    continues the run). Every value is checked here (finite rates, momentum in [0, 1)); the instance is
    read-only once built (``dataclasses.replace`` makes a changed copy).

    The strong-baseline options (see :mod:`ptl_ext.train.optim`): ``optimizer`` is ``"sgd"`` (the papers'
    recipe, the default), ``"adam"`` (L2 weight decay) or ``"adamw"`` (decoupled weight decay), the last two
    with betas ``(adam_beta1, adam_beta2)`` (momentum and Nesterov apply to SGD only); ``warmup_epochs`` > 0
    ramps the learning rate linearly from ``warmup_factor`` times its value at the first epoch to its full
    value at epoch ``warmup_epochs`` (Luo et al. 2019: 10 epochs from 0.1x). The strong recipe itself is
    ``Adam, lr 3.5e-4, weight decay 5e-4, warm-up 10 epochs from 0.1, steps of 0.1``.
    """

    epochs: int = 50
    lr: float = 0.01
    head_lr: float = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    step_size: int = 10
    gamma: float = 0.1
    optimizer: str = "sgd"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    warmup_epochs: int = 0
    warmup_factor: float = 0.1
    amp: bool = False
    eval_every: int = 10
    save_every: int = 1
    out_dir: str = "runs/ptl"
    progress: bool = True
    title: str = ""
    overwrite: bool = False
    checkpoints: str = "all"
    head_lr_factor: float = 10.0
    kept_lr_divisor: float = 10.0

    def __post_init__(self):
        name = "TrainConfig.{}".format
        self.epochs = _checks.positive_int(self.epochs, name("epochs"))
        self.step_size = _checks.positive_int(self.step_size, name("step_size"))
        self.eval_every = _checks.integer(self.eval_every, name("eval_every"), minimum=0)
        self.save_every = _checks.integer(self.save_every, name("save_every"), minimum=0)
        self.lr = _checks.real(self.lr, name("lr"), 0.0)
        self.head_lr = _checks.real(self.head_lr, name("head_lr"), 0.0, allow_none=True)
        self.weight_decay = _checks.real(self.weight_decay, name("weight_decay"), 0.0)
        self.gamma = _checks.real(self.gamma, name("gamma"), 0.0)
        self.head_lr_factor = _checks.real(self.head_lr_factor, name("head_lr_factor"), 0.0)
        self.kept_lr_divisor = _checks.real(self.kept_lr_divisor, name("kept_lr_divisor"), 0.0, exclusive_minimum=True)
        self.momentum = _checks.real(self.momentum, name("momentum"), 0.0)
        _checks.choice(self.optimizer, name("optimizer"), OPTIMIZERS)
        for beta in ("adam_beta1", "adam_beta2"):
            setattr(self, beta, _checks.real(getattr(self, beta), name(beta), 0.0))
            if getattr(self, beta) >= 1.0:
                raise ValueError(f"TrainConfig.{beta} must be in [0, 1), got {getattr(self, beta)!r}")
        self.warmup_epochs = _checks.integer(self.warmup_epochs, name("warmup_epochs"), minimum=0)
        self.warmup_factor = _checks.real(self.warmup_factor, name("warmup_factor"), 0.0, 1.0, exclusive_minimum=True)
        if self.momentum >= 1.0:
            raise ValueError(f"TrainConfig.momentum must be in [0, 1), got {self.momentum!r}")
        for flag in ("nesterov", "amp", "progress", "overwrite"):
            _checks.boolean(getattr(self, flag), name(flag))
        if not isinstance(self.out_dir, (str, os.PathLike)):
            raise TypeError(f"TrainConfig.out_dir must be a path, got {self.out_dir!r}")
        if not os.fspath(self.out_dir).strip():
            raise ValueError(f"TrainConfig.out_dir must be a non-empty path, got {os.fspath(self.out_dir)!r}")
        self.out_dir = os.fspath(self.out_dir)
        if not isinstance(self.title, str):
            raise TypeError(f"TrainConfig.title must be a string, got {self.title!r}")
        _checks.choice(self.checkpoints, name("checkpoints"), CHECKPOINT_POLICIES)
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig.nesterov needs momentum > 0")
