"""Losses: cross-entropy with label smoothing, batch-hard triplet, and the trainer's loss objects.

A trainer loss object is called as ``loss_fn(output, targets, inputs)`` where ``output`` is what
``model(inputs, return_features=True)`` returns (``(logits, features)`` for every network here),
and returns ``(loss, parts)``: the scalar to back-propagate and a dict of named detached scalars
for the log. Later methods (STD, MGN) plug in their own objects with the same call.
"""

import torch
import torch.nn.functional as F


def batch_hard_triplet_loss(features, labels, margin=0.3):
    """Batch-hard triplet loss (Hermans et al.) over Euclidean distances in a batch.

    For each anchor the farthest positive and the nearest negative give
    ``max(0, d_ap − d_an + margin)``; ``margin=None`` uses the soft margin ``softplus(d_ap − d_an)``.
    Anchors without a positive or a negative in the batch are skipped.

    Args:
        features: ``[B, D]`` floating.
        labels: ``[B]`` integer identity labels.
    Returns:
        scalar mean over the anchors that have both (0 if none has).
    """
    if features.dim() != 2 or labels.dim() != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"batch_hard_triplet_loss: expected features [B, D] and labels [B], got "
            f"{list(features.shape)} and {list(labels.shape)}"
        )
    features = features.float()
    squared = features.pow(2).sum(1)
    dist = (squared[:, None] + squared[None, :] - 2.0 * features @ features.t()).clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    negative = ~same
    valid = positive.any(1) & negative.any(1)
    if not valid.any():
        return features.sum() * 0.0
    hardest_pos = dist.masked_fill(~positive, float("-inf")).max(1).values[valid]
    hardest_neg = dist.masked_fill(~negative, float("inf")).min(1).values[valid]
    if margin is None:
        return F.softplus(hardest_pos - hardest_neg).mean()
    return F.relu(hardest_pos - hardest_neg + margin).mean()


class ClassificationLoss:
    """Cross-entropy on the logits, with optional label smoothing (``0`` = plain cross-entropy)."""

    def __init__(self, label_smoothing=0.0):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def __call__(self, output, targets, inputs=None):
        logits = output[0] if isinstance(output, (tuple, list)) else output
        ce = F.cross_entropy(logits.float(), targets, label_smoothing=self.label_smoothing)
        return ce, {"ce": ce.detach()}


class ReIDLoss(ClassificationLoss):
    """``CE(logits) + triplet_weight · batch-hard triplet(features)``; no triplet term when ``triplet_weight=0``.

    ``triplet_margin=None`` selects the soft-margin triplet. The triplet term needs P×K batches.
    """

    def __init__(self, label_smoothing=0.0, triplet_weight=0.0, triplet_margin=0.3):
        super().__init__(label_smoothing)
        if triplet_weight < 0:
            raise ValueError(f"triplet_weight must be >= 0, got {triplet_weight}")
        if triplet_margin is not None and triplet_margin < 0:
            raise ValueError(f"triplet_margin must be >= 0 or None (soft margin), got {triplet_margin}")
        self.triplet_weight, self.triplet_margin = triplet_weight, triplet_margin

    def __call__(self, output, targets, inputs=None):
        if not isinstance(output, (tuple, list)) or len(output) != 2:
            raise TypeError("ReIDLoss: expected model output (logits, features) from return_features=True")
        loss, parts = super().__call__(output, targets, inputs)
        if self.triplet_weight > 0:
            triplet = batch_hard_triplet_loss(output[1], targets, self.triplet_margin)
            loss = loss + self.triplet_weight * triplet
            parts["triplet"] = triplet.detach()
        return loss, parts
