"""The training engine: epochs of SGD over a loader, evaluation, metrics files, checkpoints, resume, DDP.

Extension points for later methods (STD, rolling back, MGN):

- ``loss_fn(output, targets, inputs) -> (loss, parts)`` (see :mod:`ptl_ext.train.losses`);
- ``optimizer_factory(model, config) -> (optimizer, scheduler)`` and :meth:`Trainer.set_optimizer`
  to swap them mid-run (see :mod:`ptl_ext.train.optim`);
- :class:`~ptl_ext.train.hooks.Hook` objects called at fit/epoch start and end, whose ``state_dict`` goes
  into checkpoints;
- ``evaluator(model, device, amp, info) -> dict`` (see :mod:`ptl_ext.train.evaluation`);
- a :class:`~ptl_ext.train.method.TrainingMethod` (``method=``) bringing all of the above at once.

Reliability: the run folder is checked and locked before the first epoch (:mod:`ptl_ext.train.run_folder`);
a trained epoch is saved before it is evaluated; ``best.pt`` is written before ``last.pt`` records a new
best; a resume is refused, before anything changes, when the checkpoint's settings differ
(:mod:`ptl_ext.train.resume`).
"""

import os
import time
from dataclasses import replace

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from ..errors import DivergenceError
from ..nn import reset_states
from .config import TrainConfig
from .distributed import DistInfo, all_reduce_mean, broadcast_buffers
from .evaluation import autocast
from .losses import ClassificationLoss
from .method import as_method
from .optim import sgd_step_optimizer
from .run_folder import RunFolder
from .trainer_files import RunFilesMixin


class Trainer(RunFilesMixin):
    """Trains ``model`` on ``train_loader`` batches ``(images, targets, ...)``.

    Args:
        model: a network whose ``model(x, return_features=True)`` feeds ``loss_fn``.
        train_loader: its batch sampler or sampler gets ``set_epoch(epoch)`` when it has one; its
            ``generator`` (see :func:`ptl_ext.data.build_dataloader`) is checkpointed.
        config: :class:`TrainConfig`.
        evaluator: e.g. :class:`~ptl_ext.train.evaluation.ReIDEvaluator`, or ``None``; its ``check()``, when
            it has one, runs before the first epoch.
        loss_fn: default :class:`~ptl_ext.train.losses.ClassificationLoss`.
        method: a :class:`~ptl_ext.train.method.TrainingMethod` (e.g. a
            :class:`~ptl_ext.train.RollingBack` or an :class:`~ptl_ext.train.STD`) or a list of them: its hooks
            run first, its optimizer factory, number of epochs (replacing ``config.epochs``) and loss wrapper
            are used.
        optimizer_factory: default :func:`~ptl_ext.train.optim.sgd_step_optimizer` (not with a method that
            brings its own).
        hooks: more :class:`~ptl_ext.train.hooks.Hook` objects, called in order after the method's.
        device: default CUDA when available, else CPU.
        info: :class:`~ptl_ext.train.distributed.DistInfo`; with ``world_size > 1`` the model is
            wrapped in ``DistributedDataParallel`` (the process group must exist).
        meta: plain values stored in checkpoints (e.g. how to rebuild the model); compared on a resume
            (see :mod:`ptl_ext.train.resume`).
        run_folder: a :class:`~ptl_ext.train.run_folder.RunFolder` for ``config.out_dir`` that the caller
            opened (and releases); by default the trainer opens one when :meth:`fit` or :meth:`resume` starts
            (``overwrite`` from the config) and releases it when :meth:`fit` ends.

    Files in ``config.out_dir`` (rank 0): ``metrics.csv`` (every epoch), ``last.pt`` (every ``save_every``
    epochs, before and after every evaluation, and after the last), ``best.pt`` (best evaluation so far,
    written before ``last.pt`` records it) and ``curves.png`` (redrawn whenever a checkpoint is written).
    """

    def __init__(
        self,
        model,
        train_loader,
        config=None,
        *,
        evaluator=None,
        loss_fn=None,
        method=None,
        optimizer_factory=None,
        hooks=(),
        device=None,
        info=None,
        meta=None,
        run_folder=None,
    ):
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.method = as_method(method)
        if self.method.optimizer_factory is not None and optimizer_factory is not None:
            raise ValueError(
                f"the training method {self.method.name} brings its optimizer factory: do not pass "
                "optimizer_factory as well"
            )
        epochs = self.method.epochs()
        self.config = config if epochs is None or epochs == config.epochs else replace(config, epochs=epochs)
        if run_folder is not None and not isinstance(run_folder, RunFolder):
            raise TypeError(f"run_folder must be a RunFolder, got {type(run_folder).__name__}")
        if run_folder is not None and os.path.abspath(run_folder.path) != os.path.abspath(self.config.out_dir):
            raise ValueError(f"run_folder {run_folder.path} is not TrainConfig.out_dir {self.config.out_dir}")
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.info = DistInfo() if info is None else info
        self.module = model.to(self.device)
        if self.info.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.module, device_ids=device_ids)
        else:
            self.model = self.module
        self.train_loader, self.evaluator = train_loader, evaluator
        self.loss_fn = self.method.wrap_loss(ClassificationLoss() if loss_fn is None else loss_fn)
        self.optimizer_factory = self.method.optimizer_factory or optimizer_factory or sgd_step_optimizer
        self.hooks = [*self.method.hooks(), *hooks]
        self.meta = dict(meta or {})
        self.set_optimizer(*self.optimizer_factory(self.module, self.config))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.config.amp and self.device.type == "cuda")
        self.epoch = 0
        self.history = []
        self.best = None
        self.states_reset = 0
        self.run_folder, self._owns_folder = run_folder, run_folder is None
        self._claimed = False  # this trainer has taken the folder: later opens continue its own run
        self._pending_eval = False  # the last epoch is saved but not evaluated yet
        self._evaluator_checked = False

    # ------------------------------------------------------------------ set-up
    def set_optimizer(self, optimizer, scheduler):
        """Use a new optimizer and per-epoch scheduler from now on (e.g. a rolling-back period)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer, self.scheduler = optimizer, scheduler

    def check_evaluator(self):
        """Run the evaluator's start-up ``check()`` (when it has one) once, so that problems it can see
        without a trained network (an unreadable split, no valid query) come before the first epoch."""
        if not self._evaluator_checked and callable(getattr(self.evaluator, "check", None)):
            self.evaluator.check()
        self._evaluator_checked = True

    # ------------------------------------------------------------------ training
    def fit(self):
        """Train from ``self.epoch`` to ``config.epochs``; returns the history (one dict per epoch).

        First the run folder is checked and locked (a folder holding another run is refused unless this
        trainer resumed or ``config.overwrite``) and the evaluator checked; an epoch whose evaluation was
        interrupted (see :meth:`resume`) is evaluated before training goes on. The folder is released at the end.
        """
        folder = self.run_folder
        if folder is not None and folder.resume and not self._claimed and folder.run_files():
            raise ValueError(f"run folder {folder.path} was opened for a resume: call Trainer.resume before fit")
        self._open_folder(resume=False)
        try:
            self.check_evaluator()
            for hook in self.hooks:
                hook.on_fit_start(self)
            self._finish_pending()
            while self.epoch < self.config.epochs:
                self.run_epoch(self.epoch)
            for hook in self.hooks:
                hook.on_fit_end(self)
        finally:
            self._close_folder()
        return self.history

    def run_epoch(self, epoch):
        """One epoch: reset states, hooks, train, step the schedule, save, evaluate, log, checkpoint.

        When an evaluation is due, ``last.pt`` is written first (marked as not evaluated), so a failing or
        killed evaluation loses no training: :meth:`resume` evaluates that epoch again.
        """
        if not self._claimed:  # called outside fit(): check the folder once, without holding it
            self._open_folder(resume=False, hold=False)
        self._finish_pending()
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
        row["time_s"] = time.perf_counter() - started
        self.epoch = epoch + 1
        self.history.append(row)
        evaluating = self.evaluator is not None and self._due(epoch, self.config.eval_every)
        if evaluating and self.config.checkpoints == "all":
            self._pending_eval = True
            self._save_before_evaluation()
        return self._finish_epoch(epoch, row, evaluating)

    def _finish_pending(self):
        if self._pending_eval:
            self._finish_epoch(self.epoch - 1, self.history[-1], True)

    def _finish_epoch(self, epoch, row, evaluating):
        """Evaluate (when due), pick the best, call the hooks' epoch end and write the outputs."""
        if evaluating:
            started = time.perf_counter()
            row.update(self.evaluate())
            row["time_s"] = row.get("time_s", 0.0) + time.perf_counter() - started
        self._pending_eval = False
        improved = self._update_best(row) and self.config.checkpoints == "all"
        for hook in self.hooks:
            hook.on_epoch_end(self, epoch, row)
        self._write_outputs(improved, rewrite_last=evaluating)
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
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            leave=False,
            disable=not (self.config.progress and self.info.is_main),
            dynamic_ncols=True,
        )
        for step, batch in enumerate(bar):
            images = batch[0].to(self.device, non_blocking=True)
            targets = batch[1].to(self.device, non_blocking=True)
            with autocast(self.device, self.config.amp):
                output = self.model(images, return_features=True)
            loss, parts = self.loss_fn(output, targets, images)
            if not torch.isfinite(loss):
                raise self._divergence(loss.item(), epoch, step)
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

    def _divergence(self, value, epoch, step):
        advice = "lower the learning rate" + (" or turn off mixed precision (amp)" if self.config.amp else "")
        last = " (last.pt holds the last saved epoch)" if os.path.exists(self.path("last.pt")) else ""
        return DivergenceError(
            f"training diverged: the loss is {value} at epoch {epoch + 1}, step {step} "
            f"(lr {self._learning_rates()['lr']:g}): {advice}, check the training images, "
            f"and start a new run{last}"
        )

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
