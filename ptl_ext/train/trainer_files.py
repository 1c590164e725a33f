"""The file side of the :class:`~ptl_ext.train.Trainer`: its run folder (checked and locked), what a checkpoint
holds, when the run's files are written, and resuming from a checkpoint (refused, before anything changes, when
it does not fit)."""

import os
import warnings
from dataclasses import asdict

from ..errors import CheckpointError, RunFolderError
from . import metrics as metrics_files
from .checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from .distributed import all_gather_objects, broadcast_object
from .resume import check_resume
from .run_folder import RunFolder


class RunFilesMixin:
    """The run folder, :meth:`state_dict`, :meth:`resume` and the run files of a :class:`~ptl_ext.train.Trainer`
    (which provides the model, optimizer, scheduler, scaler, hooks, method, config, meta and info)."""

    def path(self, name):
        """Path of a run file (``metrics.csv``, ``curves.png``, ``last.pt``, ``best.pt``)."""
        return os.path.join(self.config.out_dir, name)

    def _open_folder(self, resume, hold=True):
        """Check and lock the run folder (rank 0; its refusal is raised on every rank); ``hold=False`` only
        checks it (the lock is taken and released)."""
        resume = resume or self._claimed
        error = None
        if self.info.is_main:
            try:
                if self.run_folder is None:
                    self.run_folder = RunFolder(
                        self.config.out_dir, resume=resume, overwrite=self.config.overwrite and not resume
                    )
                elif resume and not (self.run_folder.resume or self._claimed):
                    raise ValueError(f"run folder {self.run_folder.path} was opened for a new run, not for a resume")
                self.run_folder.acquire()
            except Exception as exc:  # re-raised below, once the other ranks know
                error = exc
        refused = broadcast_object(None if error is None else str(error), self.info)  # collective under DDP
        if error is not None:
            raise error
        if refused is not None:
            raise RunFolderError(f"rank 0 refused the run folder: {refused}")
        self._claimed = True
        if not hold:
            self._close_folder()

    def _close_folder(self):
        if self._owns_folder and self.run_folder is not None:
            self.run_folder.release()
            self.run_folder = None

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
            "pending_eval": self._pending_eval,
            "method": {"name": self.method.name, "settings": self.method.settings()},
            "hooks": [hook.state_dict() for hook in self._stateful_hooks()],
            "hook_types": [type(hook).__name__ for hook in self._stateful_hooks()],
            "rng": all_gather_objects(rng, self.info),
            "config": asdict(self.config),
            "meta": self.meta,
        }

    def _save_before_evaluation(self):
        """Write ``last.pt`` (marked as not evaluated) before an evaluation, so that a failing or killed
        evaluation loses no training."""
        state = self.state_dict()  # a collective call: every rank takes part
        if self.info.is_main:
            os.makedirs(self.config.out_dir, exist_ok=True)
            save_checkpoint(self.path("last.pt"), state)

    def _write_outputs(self, improved, rewrite_last=False):
        if self.config.checkpoints == "final":
            due = self._due(self.epoch - 1, 0)
        else:
            due = rewrite_last or self._due(self.epoch - 1, self.config.save_every)
        state = self.state_dict() if improved or due else None  # a collective call: every rank takes part
        if not self.info.is_main:
            return
        os.makedirs(self.config.out_dir, exist_ok=True)
        if improved:  # best.pt first: a crash before last.pt records the new best leaves an older last.pt,
            # whose resume evaluates (or trains) this epoch again and rewrites best.pt
            save_checkpoint(self.path("best.pt"), state, *([self.path("last.pt")] if due else []))
        elif due:
            save_checkpoint(self.path("last.pt"), state)
        metrics_files.write_csv(self.path("metrics.csv"), self.history)
        if improved or due:  # drawing costs about as much as a checkpoint: redrawn with one, not every epoch
            primary = self.evaluator.primary if self.evaluator is not None else "mAP"
            metrics_files.plot_curves(self.path("curves.png"), self.history, primary, self.config.title)

    def _stateful_hooks(self):
        """The hooks whose state a checkpoint keeps (observers such as logging are left out)."""
        return [hook for hook in self.hooks if hook.stateful]

    def resume(self, path):
        """Continue from a checkpoint of this run (model, optimizer, scheduler, history, RNG, hooks).

        Takes the run folder first (a resume may continue a used folder). Nothing changes, and the folder
        is released again, when the checkpoint is refused:

        Raises:
            CheckpointError: the file is corrupted or does not fit the model, the hooks or the optimizer
                (:class:`~ptl_ext.errors.MethodMismatchError` when it was trained with another method).
            ResumeMismatchError: its settings (config, meta, method settings) differ from this run's.
        """
        self._open_folder(resume=True)
        try:
            return self._load(path)
        except BaseException:
            self._close_folder()
            raise

    def _load(self, path):
        state = load_checkpoint(path)
        check_resume(path, state, self.config, self.meta, self.method)
        hooks = self._stateful_hooks()
        if len(state["hooks"]) != len(hooks):
            saved = ", ".join(state.get("hook_types", [])) or "unnamed"
            raise CheckpointError(
                f"checkpoint {path} has {len(state['hooks'])} hook states ({saved}), the trainer "
                f"has {len(hooks)} hooks ({', '.join(type(h).__name__ for h in hooks)}): "
                "resume with the same training method and hooks"
            )
        self._check_model(path, state["model"])
        for hook, hook_state in zip(hooks, state["hooks"]):  # first: a hook may swap the optimizer
            hook.load_state_dict(hook_state)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run's optimizer: {exc}") from exc
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.module.load_state_dict(state["model"])  # last: checked above, so it cannot fail half-way
        self.epoch, self.history, self.best = state["epoch"], list(state["history"]), state["best"]
        self._pending_eval = bool(state.get("pending_eval", False))
        if len(state["rng"]) == self.info.world_size:
            rng = state["rng"][self.info.rank]
            restore_rng_state(rng["global"])
            generator = getattr(self.train_loader, "generator", None)
            if generator is not None and rng["loader"] is not None:
                generator.set_state(rng["loader"])
        else:
            warnings.warn(
                f"checkpoint {path} was written by {len(state['rng'])} processes, this run has "
                f"{self.info.world_size}: random states are not restored, so the resume is not exact",
                RuntimeWarning,
                stacklevel=3,
            )
        return state

    def _check_model(self, path, weights):
        """Refuse ``weights`` unless they have exactly this model's names and shapes (nothing is loaded)."""
        own = self.module.state_dict()
        listed = {
            "missing": [k for k in own if k not in weights],
            "unexpected": [k for k in weights if k not in own],
            "other shapes": [
                f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
                for k, v in own.items()
                if k in weights and tuple(weights[k].shape) != tuple(v.shape)
            ],
        }
        problems = [
            f"{title} {', '.join(keys[:5])}{f' (+{len(keys) - 5} more)' if len(keys) > 5 else ''}"
            for title, keys in listed.items()
            if keys
        ]
        if problems:
            raise CheckpointError(f"checkpoint {path} does not fit this model: {'; '.join(problems)}")
