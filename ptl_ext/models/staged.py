"""Staged backbones with a head: the output convention shared by every network, and the plain baseline."""

from contextlib import contextmanager

import torch
from torch import nn

from .. import _checks
from .heads import make_head

__all__ = ["HeadedNet", "BackboneNet", "probe_stages"]


@contextmanager
def _eval_mode(module):
    """Put ``module`` in eval mode for the block, then restore every submodule's own flag."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _check_input_size(input_size):
    return _checks.size_pair(input_size, "input_size")


def probe_stages(stages, input_size, in_channels=3):
    """Output ``(C, H, W)`` of each stage for one ``[1, in_channels, *input_size]`` input (a dry run).

    Runs in eval mode without gradients, so BatchNorm statistics are not touched.
    """
    stages = nn.ModuleList(stages)
    if len(stages) == 0:
        raise ValueError("stages must hold at least one module")
    h, w = _check_input_size(input_size)
    param = next(stages.parameters(), None)
    x = torch.zeros(
        1,
        in_channels,
        h,
        w,
        device=param.device if param is not None else None,
        dtype=param.dtype if param is not None else None,
    )
    shapes = []
    with _eval_mode(stages), torch.no_grad():
        for i, stage in enumerate(stages):
            x = stage(x)
            if x.dim() != 4:
                raise ValueError(f"stage {i} must return a [B, C, H, W] map, got shape {tuple(x.shape)}")
            shapes.append(tuple(x.shape[1:]))
    return shapes


class HeadedNet(nn.Module):
    """Base of the networks: ``forward_features(x) -> [B, feature_dim]`` plus ``self.head``.

    ``forward(x)`` returns the head's logits ``[B, num_classes]`` in training mode and the evaluation feature
    ``head.embed(features)`` in eval mode (the pooled feature, or BNNeck's normalised one; the pooled feature for
    a head without ``embed``);
    ``forward(x, return_features=True)`` returns ``(logits, features)`` (the pooled feature) in either mode.
    Subclasses keep their backbone as an ``nn.ModuleList`` ``self.stages``.
    """

    head_name = "head"  # never rolled back

    def forward_features(self, x):
        raise NotImplementedError

    def rollback_blocks(self):
        """Rolling-back blocks as module-name prefixes: one per stage, ``[["stages.0"], ["stages.1"], ...]``."""
        stages = getattr(self, "stages", None)
        if not isinstance(stages, nn.ModuleList):
            raise TypeError(
                f"rolling back: no default blocks for {type(self).__name__} (no stages ModuleList); "
                "pass blocks=[[prefix, ...], ...]"
            )
        return [[f"stages.{i}"] for i in range(len(stages))]

    def forward(self, x, return_features=False):
        features = self.forward_features(x)
        if return_features:
            return self.head(features), features
        if self.training:
            return self.head(features)
        embed = getattr(self.head, "embed", None)  # a head of one's own without embed: the pooled feature
        return features if embed is None else embed(features)


class BackboneNet(HeadedNet):
    """A plain staged backbone, global average pooling and a head (the baseline and the STD student).

    Args:
        stages: modules run in sequence on ``[B, 3, H, W]`` images (e.g. ``resnet50().stages()``).
        num_classes: classifier outputs.
        head: ``"reid"``, ``"rolling_back"`` or ``"cifar"`` (see :mod:`ptl_ext.models.heads`); ``head_hidden`` /
            ``dropout`` override it; ``head_init``: ``"torch"`` or ``"he"``.
        input_size: ``(H, W)`` of the dry run that finds the feature size (the last stage's channels).
    """

    def __init__(
        self,
        stages,
        num_classes,
        *,
        head="reid",
        head_hidden=None,
        dropout=None,
        input_size=(256, 128),
        head_init="torch",
    ):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.stage_shapes = probe_stages(self.stages, input_size)
        self.feature_dim = self.stage_shapes[-1][0]
        self.head = make_head(head, self.feature_dim, num_classes, head_hidden, dropout, head_init)

    def forward_features(self, x):
        for stage in self.stages:
            x = stage(x)
        return x.mean((2, 3))
