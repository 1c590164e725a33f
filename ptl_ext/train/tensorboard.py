"""TensorBoard scalars of a run, written by a trainer hook beside ``metrics.csv`` (which stays).

``tensorboard`` is an optional dependency (``pip install tensorboard``); :class:`TensorBoardHook` says
so when it is missing, before training starts.
"""

import numbers
import os

from ..errors import MissingPackageError
from .hooks import Hook

__all__ = ["TensorBoardHook", "scalar_tag", "TENSORBOARD_MISSING"]

TENSORBOARD_MISSING = "TensorBoard logging needs the tensorboard package: pip install tensorboard"
EVAL_METRICS = {
    "mAP": "eval/mAP",
    "rank1": "eval/CMC-1",
    "rank5": "eval/CMC-5",
    "rank10": "eval/CMC-10",
    "mINP": "eval/mINP",
    "top1_error": "eval/top1_error",
}
SKIPPED = ("epoch", "num_valid")


def scalar_tag(key):
    """The TensorBoard tag of an epoch-row key: ``loss`` and its parts under ``loss/``, learning rates
    under ``lr/``, evaluation metrics under ``eval/`` (CMC-k for ``rank<k>``), the rest under ``train/``."""
    if key in EVAL_METRICS:
        return EVAL_METRICS[key]
    if key == "lr" or key.startswith("lr_"):
        return "lr/" + ("all" if key == "lr" else key[3:])
    if key in ("train_acc", "time_s", "states_reset"):
        return "train/" + key
    return "loss/" + key


def _summary_writer():
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise MissingPackageError(TENSORBOARD_MISSING) from exc
    return SummaryWriter


class TensorBoardHook(Hook):
    """Writes every numeric value of each epoch's row (loss parts, learning rates, train accuracy, mAP,
    CMC-1/5/10, mINP, top-1 error, epoch time) as a scalar at step ``epoch``.

    Args:
        log_dir: event-file folder (default ``<run folder>/tensorboard``, e.g. ``runs/ptl/tensorboard``;
            view with ``tensorboard --logdir runs``).

    Only rank 0 writes. After a resume, events at or after the resumed epoch left by the interrupted
    run are discarded (TensorBoard's ``purge_step``). Raises ``ImportError`` with the install command
    when tensorboard is missing.
    """

    stateful = False  # an observer: adding or dropping it does not change a run, so a resume may do either

    def __init__(self, log_dir=None):
        self._writer_class = _summary_writer()
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a folder path or None, got {type(log_dir).__name__}")
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.writer = None

    def on_fit_start(self, trainer):
        if not trainer.info.is_main:
            return
        folder = self.log_dir or os.path.join(trainer.config.out_dir, "tensorboard")
        self.writer = self._writer_class(folder, purge_step=trainer.epoch + 1 if trainer.epoch else None)

    def on_epoch_end(self, trainer, epoch, row):
        if self.writer is None:
            return
        for key, value in row.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, numbers.Real):
                continue
            self.writer.add_scalar(scalar_tag(key), float(value), global_step=epoch + 1)
        self.writer.flush()

    def on_fit_end(self, trainer):
        if self.writer is not None:
            self.writer.close()
            self.writer = None
