"""Training: the ``Trainer`` engine, losses, optimiser set-up, evaluators, checkpoints and DDP helpers.

Uses ``ptl_ext.models``, ``ptl_ext.nn`` and ``ptl_ext.reid`` (the evaluators, on first use); never imported by
them. Names are imported from their submodules on first use (``TrainConfig`` needs no torch). It does not
import ``ptl_ext.data``: the loaders come from the caller (the ``ptl`` command line).
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "TrainConfig": "config",
    "STD": "distill",
    "FrozenTeacher": "distill",
    "STDLoss": "distill",
    "DistInfo": "distributed",
    "gather_interleaved": "distributed",
    "init_distributed": "distributed",
    "ClassificationEvaluator": "evaluation",
    "ReIDEvaluator": "evaluation",
    "extract_features": "evaluation",
    "Hook": "hooks",
    "ClassificationLoss": "losses",
    "ReIDLoss": "losses",
    "batch_hard_triplet_loss": "losses",
    "CombinedMethod": "method",
    "TrainingMethod": "method",
    "MGNLoss": "mgn_loss",
    "make_optimizer": "optim",
    "make_scheduler": "optim",
    "param_groups": "optim",
    "sgd_step_optimizer": "optim",
    "RollbackHook": "rolling_back",
    "RollbackSchedule": "rollback_schedule",
    "RollingBack": "rolling_back",
    "rollback": "rolling_back",
    "RunFolder": "run_folder",
    "Trainer": "trainer",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = list(_EXPORTS)
