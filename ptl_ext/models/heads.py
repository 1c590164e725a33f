"""Classifier heads: the ReID head (three FC layers) and the CIFAR head (two linear layers)."""

from torch import nn

from .. import _checks

__all__ = ["MLPHead", "make_head", "HEADS"]

# name -> default (hidden sizes, BatchNorm between layers, dropout)
HEADS = {
    "reid": ((1024, 512), True, 0.5),
    "cifar": ((512,), False, 0.0),
}


class MLPHead(nn.Module):
    """Fully connected classifier ``[B, in_features] -> [B, num_classes]``.

    Each hidden layer is ``Linear → (BatchNorm1d) → ReLU → (Dropout)``; the last layer is a plain
    ``Linear`` producing the logits. The ReID head (our reading of the paper's three FC layers) is
    ``2048 → 1024 → 512 → classes`` with BatchNorm and dropout 0.5; the CIFAR head is two linear layers.
    """

    def __init__(self, in_features, num_classes, hidden=(1024, 512), batch_norm=True, dropout=0.5):
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("num_classes", num_classes),
            *(("hidden", h) for h in hidden),
        ):
            _checks.positive_int(value, name)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.in_features, self.num_classes = in_features, num_classes

    def forward(self, features):
        return self.layers(features)


def make_head(kind, in_features, num_classes, hidden=None, dropout=None):
    """Build a head by name (``"reid"`` or ``"cifar"``), overriding its default ``hidden`` sizes or ``dropout``."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {kind!r}")
    default_hidden, batch_norm, default_dropout = HEADS[kind]
    return MLPHead(
        in_features,
        num_classes,
        hidden=default_hidden if hidden is None else tuple(hidden),
        batch_norm=batch_norm,
        dropout=default_dropout if dropout is None else dropout,
    )
