"""Training methods: what a method such as rolling back or STD changes in a run, handed to the Trainer as one object.

A :class:`TrainingMethod` may bring hooks, its own optimizer factory, its own number of epochs and a wrapper
around the loss; ``Trainer(..., method=m)`` takes all of them from ``m`` at once. Its :attr:`~TrainingMethod.name`
and :meth:`~TrainingMethod.settings` go into every checkpoint, and a resume with another method or other
settings is refused (:class:`~ptl_ext.errors.MethodMismatchError`, :class:`~ptl_ext.errors.ResumeMismatchError`).
"""

__all__ = ["TrainingMethod", "CombinedMethod", "as_method"]


class TrainingMethod:
    """Base (and the plain method): no hooks, the trainer's optimizer factory, ``TrainConfig.epochs``, the loss as is.

    Override what the method changes:

    - :attr:`name`: a short identifier (``"rolling_back"``, ``"std"``), saved in checkpoints;
    - :meth:`hooks`: :class:`~ptl_ext.train.Hook` objects the trainer calls (before its own ``hooks=``);
    - :attr:`optimizer_factory`: ``factory(model, config) -> (optimizer, scheduler)`` or ``None``;
    - :meth:`epochs`: the run's number of epochs (replaces ``TrainConfig.epochs``) or ``None``;
    - :meth:`wrap_loss`: ``loss_fn -> loss_fn`` (e.g. STD adds its distillation term);
    - :meth:`settings`: plain values that must stay the same when a run resumes.
    """

    name = "plain"
    optimizer_factory = None

    def hooks(self):
        """The hooks of the method (called in this order, before the trainer's other hooks)."""
        return []

    def epochs(self):
        """The number of epochs the method trains (``None``: ``TrainConfig.epochs``)."""
        return None

    def wrap_loss(self, loss_fn):
        """The loss the trainer uses, built around the run's supervised ``loss_fn``."""
        return loss_fn

    def settings(self):
        """A dict of plain values compared with the checkpoint's on a resume."""
        return {}


class CombinedMethod(TrainingMethod):
    """Several methods at once (e.g. STD and rolling back): hooks in order, losses wrapped in order.

    At most one of them may bring an optimizer factory and at most one a number of epochs.
    """

    def __init__(self, methods):
        self.methods = [as_method(m) for m in methods]
        self.name = "+".join(m.name for m in self.methods) or "plain"
        for what in ("optimizer_factory", "epochs"):
            owners = [m.name for m in self.methods if _brings(m, what)]
            if len(owners) > 1:
                raise ValueError(
                    f"training methods {' and '.join(owners)} both set the {what.replace('_', ' ')}; "
                    "combine methods that set it at most once"
                )
        self.optimizer_factory = next(
            (m.optimizer_factory for m in self.methods if _brings(m, "optimizer_factory")), None
        )

    def hooks(self):
        return [hook for m in self.methods for hook in m.hooks()]

    def epochs(self):
        return next((m.epochs() for m in self.methods if m.epochs() is not None), None)

    def wrap_loss(self, loss_fn):
        for m in self.methods:
            loss_fn = m.wrap_loss(loss_fn)
        return loss_fn

    def settings(self):
        return {m.name: m.settings() for m in self.methods}


def _brings(method, what):
    if what == "epochs":
        return method.epochs() is not None
    return method.optimizer_factory is not None


def as_method(method):
    """``method`` as a :class:`TrainingMethod`: ``None`` is the plain method, a list or tuple is combined."""
    if method is None:
        return TrainingMethod()
    if isinstance(method, (list, tuple)):
        return as_method(method[0]) if len(method) == 1 else CombinedMethod(method)
    if not isinstance(method, TrainingMethod):
        raise TypeError(f"method must be a TrainingMethod (e.g. a RollingBack or an STD), got {type(method).__name__}")
    return method
