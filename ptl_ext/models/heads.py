"""Classifier heads: the PTL paper's ReID head (three FC layers), the rolling-back paper's head, the CIFAR
head (two linear layers) and BNNeck; how the MLP heads' weights start (``init``).

Every head maps pooled features ``[B, D]`` to logits with ``head(features)`` and gives the evaluation
feature with ``head.embed(features)`` (the pooled feature itself, except for BNNeck's after-BN variant).
"""

import torch
from torch import nn

from .. import _checks
from ._registry import HEAD_INITS, HEAD_NAMES

__all__ = ["MLPHead", "BNNeckHead", "make_head", "HEADS", "BNNECK_HEADS", "HEAD_INITS", "HEAD_NAMES"]

# name -> default (hidden sizes, BatchNorm between layers, dropout, activation)
HEADS = {
    "reid": ((1024, 512), True, 0.5, "relu"),
    # the rolling-back paper: 512-D FC, batch normalisation, leaky ReLU, FC to the identities
    "rolling_back": ((512,), True, 0.0, "leaky_relu"),
    "cifar": ((512,), False, 0.0, "relu"),
}
ACTIVATIONS = {"relu": lambda: nn.ReLU(inplace=True), "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=True)}
# BNNeck head name -> the evaluation feature: after its BatchNorm or before it (the pooled feature)
BNNECK_HEADS = {"bnneck": "after", "bnneck_pre": "before"}


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

    def embed(self, features):
        """The evaluation feature: ``features`` unchanged."""
        return features


class BNNeckHead(nn.Module):
    """BNNeck (Luo et al., "Bag of Tricks and a Strong Baseline for Deep Person Re-identification", 2019):
    ``[B, D]`` pooled features -> BatchNorm1d -> bias-free ``Linear(D, num_classes)`` logits.

    The metric losses (triplet) see the pooled feature before the BatchNorm, the classifier the normalised one;
    the BatchNorm's shift is frozen at zero and the classifier starts from N(0, 0.001²), as in the strong
    baseline. ``eval_feature``: ``"after"`` (the normalised feature, the strong baseline's choice) or
    ``"before"`` (the pooled feature) is what :meth:`embed` returns for retrieval.
    """

    def __init__(self, in_features, num_classes, eval_feature="after"):
        super().__init__()
        for name, value in (("in_features", in_features), ("num_classes", num_classes)):
            _checks.positive_int(value, name)
        if eval_feature not in ("after", "before"):
            raise ValueError(f"eval_feature must be 'after' or 'before', got {eval_feature!r}")
        self.bn = nn.BatchNorm1d(in_features)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_features, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self.in_features, self.num_classes, self.eval_feature = in_features, num_classes, eval_feature

    def forward(self, features):
        return self.classifier(self.bn(features))

    @torch.no_grad()
    def embed(self, features):
        """The evaluation feature ``[B, D]``: the BatchNorm's output or ``features`` (see ``eval_feature``)."""
        return self.bn(features) if self.eval_feature == "after" else features


def make_head(kind, in_features, num_classes, hidden=None, dropout=None, init="torch"):
    """Build a head by name, overriding its default ``hidden`` sizes or ``dropout``.

    ``"reid"``, ``"rolling_back"`` and ``"cifar"``: :class:`MLPHead` (``init``: ``"torch"`` or ``"he"``);
    ``"bnneck"`` / ``"bnneck_pre"``: :class:`BNNeckHead` evaluating the feature after / before its BatchNorm
    (no hidden layers, no dropout, its own initialisation).
    """
    if kind in BNNECK_HEADS:
        if hidden is not None or dropout:
            raise ValueError(
                f"the {kind} head has no hidden layers and no dropout; got hidden={hidden}, dropout={dropout}"
            )
        return BNNeckHead(in_features, num_classes, BNNECK_HEADS[kind])
    if kind not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEAD_NAMES)}, got {kind!r}")
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
