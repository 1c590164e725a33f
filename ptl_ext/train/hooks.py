"""The base of trainer hooks: code called at fit and epoch start and end, with state kept in checkpoints."""

__all__ = ["Hook"]


class Hook:
    """Base of trainer hooks; override what you need. ``row`` is the epoch's metrics dict (editable)."""

    def on_fit_start(self, trainer):
        """Before the first epoch of :meth:`Trainer.fit` (also after a resume)."""

    def on_epoch_start(self, trainer, epoch):
        """After the latent states were reset, before the first batch of ``epoch`` (0-based)."""

    def on_epoch_end(self, trainer, epoch, row):
        """After training and evaluation of ``epoch``, before the metrics files and checkpoint are written.

        (``last.pt`` may already hold the epoch, saved before its evaluation; it is written again after.)"""

    def on_fit_end(self, trainer):
        """After the last epoch."""

    stateful = True  # False for observers (logging): kept out of checkpoints, free to differ on a resume

    def state_dict(self):
        """What the hook needs to continue after a resume (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict`'s output."""
