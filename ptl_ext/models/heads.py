"""Classifier heads: the PTL paper's ReID head (three FC layers), the rolling-back paper's head and the
CIFAR head (two linear layers); how their weights start (``init``)."""

from torch import nn

from .. import _checks
from ._registry import HEAD_INITS

__all__ = ["MLPHead", "make_head", "HEADS", "HEAD_INITS"]

# name -> default (hidden sizes, BatchNorm between layers, dropout, activation)
HEADS = {
    "reid": ((1024, 512), True, 0.5, "relu"),
    # the rolling-back paper: 512-D FC, batch normalisation, leaky ReLU, FC to the identities
    "rolling_back": ((512,), True, 0.0, "leaky_relu"),
    "cifar": ((512,), False, 0.0, "relu"),
}
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True)}


class MLPHead(nn.Module):
    """Fully connected classifier ``[B, in_features] -> [B, num_classes]``.

    Each hidden layer is ``Linear → (BatchNorm1d) → activation → (Dropout)``; the last layer is a plain
    ``Linear`` producing the logits. The ReID head (our reading of the PTL paper's three FC layers) is
    ``2048 → 1024 → 512 → classes`` with BatchNorm and dropout 0.5; the rolling-back head is
    ``F → 512 → BN → leaky ReLU → classes``; the CIFAR head is two linear layers. ``activation``:
    ``"relu"`` or ``"leaky_relu"`` (slope 0.01); ``init``: ``"torch"`` (PyTorch's default) or ``"he"``
    (He et al. 2015: normal with std sqrt(2 / fan_in), biases 0).
    """

    def __init__(
        self,
        in_features,
        num_classes,
        hidden=(1024, 512),
        batch_norm=True,
        dropout=0.5,
        activation="relu",
        init="torch",
    ):
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("num_classes", num_classes),
            *(("hidden", h) for h in hidden),
        ):
            _checks.positive_int(value, name)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        if init not in HEAD_INITS:
            raise ValueError(f"init must be one of {', '.join(HEAD_INITS)}, got {init!r}")
        layers = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.in_features, self.num_classes = in_features, num_classes
        if init == "he":
            for layer in self.layers:
                if isinstance(layer, nn.Linear):
                    nn.init.kaiming_normal_(layer.weight, mode="fan_in", nonlinearity="relu")
                    if layer.bias is not None:
                        nn.init.zeros_(layer.bias)

    def forward(self, features):
        return self.layers(features)


def make_head(kind, in_features, num_classes, hidden=None, dropout=None, init="torch"):
    """Build a head by name (``"reid"``, ``"rolling_back"`` or ``"cifar"``), overriding its default ``hidden``
    sizes or ``dropout``; ``init``: ``"torch"`` or ``"he"`` (see :class:`MLPHead`)."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {kind!r}")
    default_hidden, batch_norm, default_dropout, activation = HEADS[kind]
    return MLPHead(
        in_features,
        num_classes,
        hidden=default_hidden if hidden is None else tuple(hidden),
        batch_norm=batch_norm,
        dropout=default_dropout if dropout is None else dropout,
        activation=activation,
        init=init,
    )
