"""The MGN loss: cross-entropy averaged over the 8 classifiers + batch-hard triplet over the 3 globals."""

import torch.nn.functional as F

from ..models.mgn import MGNOutput
from .losses import batch_hard_triplet_loss

# The released MGN+PTL training set-up beside its 384×128 input (the model zoo's input size for MGN):
# P×K = 4×4, triplet weight 1 with margin 1.2.
MGN_RECIPE = {"p": 4, "triplet_weight": 1.0, "triplet_margin": 1.2}


class MGNLoss:
    """``ce_weight · mean_k CE(logits_k) + triplet_weight · mean_g triplet(global_g)`` for :class:`MGNOutput`.

    Called as ``loss_fn(output, targets, inputs)`` (the trainer's convention) with ``output`` from
    ``MGN(x, return_features=True)``. The triplet term is batch-hard with ``triplet_margin`` (1.2 as in
    the released MGN+PTL code; ``None`` = soft margin) and needs P×K batches.
    Returns ``(loss, {"ce", "triplet"})``.
    """

    def __init__(
        self,
        triplet_margin=MGN_RECIPE["triplet_margin"],
        triplet_weight=MGN_RECIPE["triplet_weight"],
        ce_weight=1.0,
        label_smoothing=0.0,
    ):
        if triplet_margin is not None and triplet_margin < 0:
            raise ValueError(f"triplet_margin must be >= 0 or None (soft margin), got {triplet_margin}")
        for name, value in (("triplet_weight", triplet_weight), ("ce_weight", ce_weight)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.triplet_margin, self.triplet_weight = triplet_margin, triplet_weight
        self.ce_weight, self.label_smoothing = ce_weight, label_smoothing

    def __call__(self, output, targets, inputs=None):
        if not isinstance(output, MGNOutput):
            raise TypeError(
                f"MGNLoss: expected the MGNOutput of an MGN network called with return_features=True, "
                f"got {type(output).__name__}"
            )
        ce = sum(
            F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
            for logits in output.piece_logits
        ) / len(output.piece_logits)
        triplet = sum(batch_hard_triplet_loss(f, targets, self.triplet_margin) for f in output.global_features) / len(
            output.global_features
        )
        loss = self.ce_weight * ce + self.triplet_weight * triplet
        return loss, {"ce": ce.detach(), "triplet": triplet.detach()}
