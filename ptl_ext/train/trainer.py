"""The training engine: epochs of SGD over a loader, evaluation, metrics files, checkpoints, resume, DDP.

Extension points for later methods (STD, rolling back, MGN):

- ``loss_fn(output, targets, inputs) -> (loss, parts)`` (see :mod:`ptl_ext.train.losses`);
- ``optimizer_factory(model, config) -> (optimizer, scheduler)`` and :meth:`Trainer.set_optimizer`
  to swap them mid-run (see :mod:`ptl_ext.train.optim`);
- :class:`Hook` objects called at fit/epoch start and end, whose ``state_dict`` goes into checkpoints;
- ``evaluator(model, device, amp, info) -> dict`` (see :mod:`ptl_ext.train.evaluation`).
"""

import os
import time
import warnings
from dataclasses import asdict, dataclass

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..nn import reset_states
from . import metrics as metrics_files
from .checkpoint import CheckpointError, capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .distributed import DistInfo, all_gather_objects, all_reduce_mean, broadcast_buffers
from .evaluation import autocast
from .losses import ClassificationLoss
from .optim import sgd_step_optimizer


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of a run (PTL defaults).

    ``head_lr=None`` trains the head at ``lr``. The learning rate is multiplied by ``gamma`` every
    ``step_size`` epochs. ``eval_every`` evaluates every N epochs and always after the last (0 =
    only after the last); ``save_every`` writes ``last.pt`` likewise. ``amp`` autocasts to bfloat16
    on CPU, float16 with loss scaling on CUDA.
    """

    epochs: int = 50
    lr: float = 0.01
    head_lr: float = None
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    step_size: int = 10
    gamma: float = 0.1
    amp: bool = False
    eval_every: int = 10
    save_every: int = 1
    out_dir: str = "runs/ptl"
    progress: bool = True
    title: str = ""

    def __post_init__(self):
        for name in ("epochs", "step_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        for name in ("eval_every", "save_every"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be an int >= 0, got {getattr(self, name)!r}")
        for name in ("lr", "weight_decay", "momentum", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if self.head_lr is not None and self.head_lr < 0:
            raise ValueError(f"TrainConfig.head_lr must be >= 0 or None, got {self.head_lr!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig.nesterov needs momentum > 0")


class Hook:
    """Base of trainer hooks; override what you need. ``row`` is the epoch's metrics dict (editable)."""

    def on_fit_start(self, trainer):
        """Before the first epoch of :meth:`Trainer.fit` (also after a resume)."""

    def on_epoch_start(self, trainer, epoch):
        """After the latent states were reset, before the first batch of ``epoch`` (0-based)."""

    def on_epoch_end(self, trainer, epoch, row):
        """After training and evaluation of ``epoch``, before the metrics files and checkpoint are written."""

    def on_fit_end(self, trainer):
        """After the last epoch."""

    def state_dict(self):
        """What the hook needs to continue after a resume (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s output."""


class Trainer:
    """Trains ``model`` on ``train_loader`` batches ``(images, targets, ...)``.

    Args:
        model: a network whose ``model(x, return_features=True)`` feeds ``loss_fn``.
        train_loader: its batch sampler or sampler gets ``set_epoch(epoch)`` when it has one; its
            ``generator`` (see :func:`ptl_ext.data.build_dataloader`) is checkpointed.
        config: :class:`TrainConfig`.
        evaluator: e.g. :class:`~ptl_ext.train.evaluation.ReIDEvaluator`, or ``None``.
        loss_fn: default :class:`~ptl_ext.train.losses.ClassificationLoss`.
        optimizer_factory: default :func:`~ptl_ext.train.optim.sgd_step_optimizer`.
        hooks: :class:`Hook` objects, called in order.
        device: default CUDA when available, else CPU.
        info: :class:`~ptl_ext.train.distributed.DistInfo`; with ``world_size > 1`` the model is
            wrapped in ``DistributedDataParallel`` (the process group must exist).
        meta: plain values stored in checkpoints (e.g. how to rebuild the model).

    Files in ``config.out_dir`` (rank 0): ``metrics.csv`` and ``curves.png`` (every epoch),
    ``last.pt`` (every ``save_every`` epochs and after the last) and ``best.pt`` (best evaluation so far).
    """

    def __init__(self, model, train_loader, config=None, *, evaluator=None, loss_fn=None,
                 optimizer_factory=sgd_step_optimizer, hooks=(), device=None, info=None, meta=None):
        self.config = TrainConfig() if config is None else config
        if not isinstance(self.config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(self.config).__name__}")
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.info = DistInfo() if info is None else info
        self.module = model.to(self.device)
        if self.info.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids)
        else:
            self.model = self.module
        self.train_loader, self.evaluator = train_loader, evaluator
        self.loss_fn = ClassificationLoss() if loss_fn is None else loss_fn
        self.optimizer_factory = optimizer_factory
        self.hooks = list(hooks)
        self.meta = dict(meta or {})
        self.set_optimizer(*optimizer_factory(self.module, self.config))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.config.amp and self.device.type == "cuda")
        self.epoch = 0
        self.history = []
        self.best = None
        self.states_reset = 0

    # ------------------------------------------------------------------ files
    def path(self, name):
        """Path of a run file (``metrics.csv``, ``curves.png``, ``last.pt``, ``best.pt``)."""
        return os.path.join(self.config.out_dir, name)

    # ------------------------------------------------------------------ set-up
    def set_optimizer(self, optimizer, scheduler):
        """Use a new optimizer and per-epoch scheduler from now on (e.g. a rolling-back period)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.scheduler = optimizer, scheduler

    # ------------------------------------------------------------------ training
    def fit(self):
        """Train from ``self.epoch`` to ``config.epochs``; returns the history (one dict per epoch)."""
        for hook in self.hooks:
            hook.on_fit_start(self)
        while self.epoch < self.config.epochs:
            self.run_epoch(self.epoch)
        for hook in self.hooks:
            hook.on_fit_end(self)
        return self.history

    def run_epoch(self, epoch):
        """One epoch: reset states, hooks, train, step the schedule, evaluate, log, checkpoint."""
        started = time.perf_counter()
        self.states_reset = reset_states(self.module)
        for hook in self.hooks:
            hook.on_epoch_start(self, epoch)
        for sampler in (getattr(self.train_loader, "batch_sampler", None), getattr(self.train_loader, "sampler", None)):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
        row = {"epoch": epoch + 1, **self._learning_rates(), **self.train_epoch(epoch)}
        self.scheduler.step()
        row["states_reset"] = self.states_reset
        if self.evaluator is not None and self._due(epoch, self.config.eval_every):
            row.update(self.evaluate())
        row["time_s"] = time.perf_counter() - started
        self.epoch = epoch + 1
        self.history.append(row)
        improved = self._update_best(row)
        for hook in self.hooks:
            hook.on_epoch_end(self, epoch, row)
        self._write_outputs(improved)
        return row

    def _learning_rates(self):
        groups = self.optimizer.param_groups
        rates = {"lr": groups[0]["lr"]}
        if len(groups) > 1:
            rates.update({f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(groups)})
        return rates

    def train_epoch(self, epoch):
        """Run the optimiser over one pass of the loader; returns the mean loss, its parts and accuracy."""
        self.model.train()
        totals, seen, correct = {}, 0, 0
        bar = tqdm(self.train_loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", leave=False,
                   disable=not (self.config.progress and self.info.is_main), dynamic_ncols=True)
        for step, batch in enumerate(bar):
            images = batch[0].to(self.device, non_blocking=True)
            targets = batch[1].to(self.device, non_blocking=True)
            with autocast(self.device, self.config.amp):
                output = self.model(images, return_features=True)
            loss, parts = self.loss_fn(output, targets, images)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss {loss.item()} at epoch {epoch + 1}, step {step}")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            n = targets.shape[0]
            for key, value in {"loss": loss.detach(), **parts}.items():
                totals[key] = totals.get(key, 0.0) + torch.as_tensor(value).detach().float() * n
            logits = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(logits, torch.Tensor) and logits.dim() == 2:
                correct += (logits.detach().argmax(1) == targets).sum()
            seen += n
            if step % 10 == 0:
                bar.set_postfix(loss=f"{float(totals['loss']) / seen:.4f}")
        if seen == 0:
            raise RuntimeError("Trainer: the training loader yielded no batches (dataset smaller than one batch?)")
        stats = {key: float(value) / seen for key, value in totals.items()}
        stats["train_acc"] = float(correct) / seen
        return all_reduce_mean(stats, self.info)

    def _due(self, epoch, every):
        """True after every ``every``-th epoch and after the last (only the last when ``every`` is 0)."""
        return epoch + 1 == self.config.epochs or (every > 0 and (epoch + 1) % every == 0)

    def evaluate(self):
        """Run the evaluator on the unwrapped model (rank 0's BatchNorm statistics on every rank); returns
        its metrics dict (``{}`` without one)."""
        if self.evaluator is None:
            return {}
        broadcast_buffers(self.module, self.info)
        return self.evaluator(self.module, self.device, self.config.amp, self.info)

    def _update_best(self, row):
        if self.evaluator is None or self.evaluator.primary not in row:
            return False
        value = row[self.evaluator.primary]
        better = self.best is None or (value > self.best if self.evaluator.higher_is_better else value < self.best)
        if better:
            self.best = value
        return better

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        """Everything an exact resume needs (RNG states of every rank included; a collective call)."""
        generator = getattr(self.train_loader, "generator", None)
        rng = {"global": capture_rng_state(), "loader": generator.get_state() if generator is not None else None}
        return {
            "epoch": self.epoch,
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": self.history,
            "best": self.best,
            "hooks": [hook.state_dict() for hook in self.hooks],
            "rng": all_gather_objects(rng, self.info),
            "config": asdict(self.config),
            "meta": self.meta,
        }

    def _write_outputs(self, improved):
        due = self._due(self.epoch - 1, self.config.save_every)
        state = self.state_dict() if improved or due else None  # a collective call: every rank takes part
        if not self.info.is_main:
            return
        os.makedirs(self.config.out_dir, exist_ok=True)
        metrics_files.write_csv(self.path("metrics.csv"), self.history)
        primary = self.evaluator.primary if self.evaluator is not None else "mAP"
        metrics_files.plot_curves(self.path("curves.png"), self.history, primary, self.config.title)
        if due:  # best.pt, when this epoch is also the best, is a copy of the same file
            save_checkpoint(self.path("last.pt"), state, *([self.path("best.pt")] if improved else []))
        elif improved:
            save_checkpoint(self.path("best.pt"), state)

    def resume(self, path):
        """Continue from a checkpoint of this run (model, optimizer, scheduler, history, RNG, hooks).

        Raises :class:`~ptl_ext.train.checkpoint.CheckpointError` before touching anything when the
        file is corrupted or does not fit the model.
        """
        state = load_checkpoint(path)
        try:
            self.module.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this model: {exc}") from exc
        if len(state["hooks"]) != len(self.hooks):
            raise CheckpointError(f"checkpoint {path} has {len(state['hooks'])} hook states, the trainer has "
                                  f"{len(self.hooks)} hooks")
        for hook, hook_state in zip(self.hooks, state["hooks"]):  # first: a hook may swap the optimizer
            hook.load_state_dict(hook_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.history, self.best = state["epoch"], list(state["history"]), state["best"]
        if len(state["rng"]) == self.info.world_size:
            rng = state["rng"][self.info.rank]
            restore_rng_state(rng["global"])
            generator = getattr(self.train_loader, "generator", None)
            if generator is not None and rng["loader"] is not None:
                generator.set_state(rng["loader"])
        else:
            warnings.warn(f"checkpoint {path} was written by {len(state['rng'])} processes, this run has "
                          f"{self.info.world_size}: random states are not restored, so the resume is not exact",
                          RuntimeWarning, stacklevel=2)
        return state
