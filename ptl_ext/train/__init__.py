"""Training: the ``Trainer`` engine, losses, optimiser set-up, evaluators, checkpoints and DDP helpers.

Uses ``ptl_ext.models``, ``ptl_ext.nn`` and ``ptl_ext.reid`` (the evaluators, on first use); never imported by
them. It does not import ``ptl_ext.data``: the loaders come from the caller (the ``ptl`` command line).
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import TrainConfig
from .distill import STD, FrozenTeacher, STDLoss
from .distributed import DistInfo, gather_interleaved, init_distributed
from .evaluation import ClassificationEvaluator, ReIDEvaluator, extract_features
from .hooks import Hook
from .losses import ClassificationLoss, ReIDLoss, batch_hard_triplet_loss
from .method import CombinedMethod, TrainingMethod
from .mgn_loss import MGNLoss
from .optim import make_optimizer, make_scheduler, param_groups, sgd_step_optimizer
from .rolling_back import RollbackHook, RollbackSchedule, rollback
from .run_folder import RunFolder
from .trainer import Trainer

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "DistInfo",
    "gather_interleaved",
    "init_distributed",
    "ClassificationEvaluator",
    "ReIDEvaluator",
    "extract_features",
    "ClassificationLoss",
    "ReIDLoss",
    "batch_hard_triplet_loss",
    "MGNLoss",
    "param_groups",
    "make_optimizer",
    "make_scheduler",
    "sgd_step_optimizer",
    "Hook",
    "TrainConfig",
    "Trainer",
    "RunFolder",
    "TrainingMethod",
    "CombinedMethod",
    "FrozenTeacher",
    "STDLoss",
    "STD",
    "RollbackHook",
    "RollbackSchedule",
    "rollback",
]
