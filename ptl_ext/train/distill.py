"""STD: self-teaching distillation of a trained (PTL) teacher's features into a student.

``L = (1 − λ)·CE(student logits, labels) + λ·L1(student feature, teacher feature)`` with λ = 0.8;
L1 is the mean absolute difference over the ``[B, D]`` features. The teacher is frozen and kept in
eval mode for the whole run, so its BConv-Cells start from zeros at every forward.
"""

import torch
import torch.nn.functional as F

from .evaluation import autocast
from .losses import ClassificationLoss
from .method import TrainingMethod

DEFAULT_STD_LAMBDA = 0.8  # the paper's λ

__all__ = ["FrozenTeacher", "STDLoss", "STD", "check_feature_sizes"]


def _feature_dim(model):
    return getattr(model, "feature_dim", None)


def check_feature_sizes(student, teacher):
    """Raise ``ValueError`` when both networks declare a ``feature_dim`` and the two differ."""
    s, t = _feature_dim(student), _feature_dim(getattr(teacher, "model", teacher))
    if s is not None and t is not None and s != t:
        raise ValueError(
            f"STD: the student's feature size ({s}) differs from the teacher's ({t}); they must match for the L1 term"
        )


class FrozenTeacher:
    """A trained network used only for its eval-mode features: ``teacher(images [B, 3, H, W]) -> [B, D]``.

    Its parameters get ``requires_grad=False``; it is put in eval mode and every call runs it in eval
    mode under ``torch.no_grad`` (the cells start from zeros each forward), whatever happened to the
    module meanwhile. It is deliberately not an ``nn.Module`` attribute of the student, so
    ``student.train()`` never reaches it.

    Args:
        model: a network whose ``model(x, return_features=True)`` returns ``(logits, features)``.
        device: where to run it (default: where its parameters are).
        amp: autocast the teacher's forward (bfloat16 on CPU, float16 on CUDA).
    """

    def __init__(self, model, device=None, amp=False):
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"teacher must be an nn.Module, got {type(model).__name__}")
        self.model = model if device is None else model.to(device)
        self.model.eval()
        self.model.requires_grad_(False)
        self.amp = amp

    @torch.no_grad()
    def __call__(self, images):
        self.model.eval()
        with autocast(images.device, self.amp):
            _, features = self.model(images, return_features=True)
        return features.float()


class STDLoss:
    """The STD trainer loss ``(1 − lam)·base + lam·L1(student features, teacher features)``.

    Called as ``loss_fn((logits, features), targets, inputs)`` like the other trainer losses; the
    teacher features come from ``teacher(inputs)``. ``base`` defaults to plain cross-entropy
    (:class:`~ptl_ext.train.ClassificationLoss`); a :class:`~ptl_ext.train.ReIDLoss` with a triplet
    term is weighted by ``1 − lam`` as a whole (our reading). ``lam=0`` is the base loss alone.

    Args:
        lam: λ in [0, 1] (paper: 0.8).
        teacher: a :class:`FrozenTeacher` or any callable ``images -> [B, D]`` features.
        base: the supervised loss object.
    Returns (call): ``(loss, {"ce", ..., "l1"})``.
    """

    def __init__(self, lam=DEFAULT_STD_LAMBDA, teacher=None, base=None):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
            raise ValueError(f"STDLoss: lam must be a number in [0, 1], got {lam!r}")
        if teacher is not None and not callable(teacher):
            raise TypeError(f"STDLoss: teacher must be callable (images -> features), got {type(teacher).__name__}")
        self.lam, self.teacher = float(lam), teacher
        self.base = ClassificationLoss() if base is None else base

    def __call__(self, output, targets, inputs=None, teacher_features=None):
        """``teacher_features`` ``[B, D]`` replaces ``teacher(inputs)`` when given."""
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError("STDLoss: expected model output (logits, features) from return_features=True")
        if teacher_features is None:
            if self.teacher is None or inputs is None:
                raise ValueError("STDLoss: needs a teacher and the inputs, or teacher_features")
            teacher_features = self.teacher(inputs)
        features = output[1].float()
        if features.shape != teacher_features.shape:
            raise ValueError(
                f"STDLoss: student features {list(features.shape)} and teacher features "
                f"{list(teacher_features.shape)} differ in shape; the feature sizes must match"
            )
        base, parts = self.base(output, targets, inputs)
        l1 = F.l1_loss(features, teacher_features.detach().float())
        parts["l1"] = l1.detach()
        return (1.0 - self.lam) * base + self.lam * l1, parts


class STD(TrainingMethod):
    """The STD training method: ``Trainer(..., loss_fn=base, method=STD(teacher, lam))`` trains with
    ``STDLoss(lam, teacher, base=base)``.

    Args:
        teacher: a :class:`FrozenTeacher` (or any callable ``images -> [B, D]`` features).
        lam: λ in [0, 1] (paper: 0.8); saved in checkpoints, a resume with another λ is refused.
    """

    name = "std"

    def __init__(self, teacher, lam=DEFAULT_STD_LAMBDA):
        if teacher is None or not callable(teacher):
            raise TypeError(f"STD: teacher must be callable (images -> features), got {type(teacher).__name__}")
        self.teacher, self.lam = teacher, STDLoss(lam, teacher).lam  # STDLoss checks lam

    def wrap_loss(self, loss_fn):
        """:class:`STDLoss` around the run's supervised ``loss_fn``."""
        return STDLoss(self.lam, self.teacher, base=loss_fn)

    def settings(self):
        """``{"lam": λ}``."""
        return {"lam": self.lam}
