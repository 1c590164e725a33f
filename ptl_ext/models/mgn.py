"""MGN (Multiple Granularity Network) and MGN+PTL, the configuration the PTL authors released.

MGN: ResNet-50 up to ``layer3[0]`` is shared; three branches p1/p2/p3 each own a copy of
``layer3[1:]`` and ``layer4`` (initialised from the same backbone weights; p1's layer4 keeps stride 2,
p2's and p3's use stride 1). Each branch map is max-pooled globally (p1), globally and in 2
horizontal stripes (p2), globally and in 3 stripes (p3). Each of the 8 pieces goes through its own
``ReLU(BN(Conv1x1(· → 256)))`` reduction and its own classifier; the test feature is the
concatenation of the 8 reductions (2048-d), globals first::

    [g_p1, g_p2, g_p3, s0_p2, s1_p2, s0_p3, s1_p3, s2_p3]

MGN+PTL adds the side stream of BConv-Cells of the released code: cells 3→16 (s2) and 16→32 (s2)
on the image, fused with the stem; 64→64 (s1) fused with layer1; 128→256 (s2) with layer2;
256→512 (s2) with ``layer3[0]``; then one 512→128 cell per branch (s2 for p1, s1 for p2/p3) whose
pooled pieces are concatenated with the branch's pieces (2048 + 128) before the reduction.

Stripes are adaptive max pools: equal stripes when the branch map height is a multiple of the stripe
count (24 rows at 384×128; use heights that are multiples of 48 for small test inputs too).
"""

import copy
from collections import OrderedDict
from typing import NamedTuple

import torch
from torch import nn

from ._registry import MGN_REDUCTIONS
from .ptl import FuseBlock, make_cell
from .resnet import resnet50

__all__ = ["MGN", "MGNPTL", "MGNOutput", "BRANCH_STRIPES", "MGN_REDUCTIONS", "mgn_pieces"]


BRANCH_STRIPES = (1, 2, 3)  # stripes per branch besides the global piece (1 = global only)
FEATURES_PER_PIECE = 256
SIDE_CELLS = ((3, 16, 2), (16, 32, 2), (64, 64, 1), (128, 256, 2), (256, 512, 2))  # (in, out, stride)
SIDE_FUSES = (64, 128, 256, 512)  # fuse widths after stem, layer1, layer2, layer3[0]
TRUNK_CHANNELS = (64, 256, 512, 1024)  # output channels of stem, layer1, layer2, layer3[0]
BRANCH_CELL = (512, 128)
BRANCH_STRIDES = (2, 1, 1)


class MGNOutput(NamedTuple):
    """What ``MGN(x, return_features=True)`` returns (a tuple: ``output[0]`` are logits as elsewhere).

    ``logits``: ``[B, C]`` mean of the 8 classifiers' logits (used for the training accuracy);
    ``features``: ``[B, 2048]`` the test feature; ``piece_logits``: 8 × ``[B, C]`` in feature order;
    ``global_features``: the 3 global reductions ``[B, 256]`` (the triplet loss's inputs).
    """

    logits: torch.Tensor
    features: torch.Tensor
    piece_logits: tuple
    global_features: tuple


def mgn_pieces(maps, stripes=BRANCH_STRIPES):
    """Max-pooled pieces of the branch maps ``[B, C, H, W]``: the globals, then each branch's stripes.

    Returns a list of ``[B, C]`` tensors (8 for the default ``stripes``) in MGN's feature order.
    Stripe ``i`` of ``n`` covers rows ``floor(i H / n)`` to ``ceil((i + 1) H / n)``, the windows of
    ``adaptive_max_pool2d(m, (n, 1))``; written as maxima over slices (the same values: a maximum is
    exact) so that the ONNX export needs no adaptive max pooling, which its exporter may lack.
    """
    globals_ = [m.amax(dim=(2, 3)) for m in maps]
    parts = []
    for m, n in zip(maps, stripes):
        if n > 1:
            height = m.shape[2]
            parts += [m[:, :, i * height // n : -(-(i + 1) * height // n)].amax(dim=(2, 3)) for i in range(n)]
    return globals_ + parts


def _set_first_stride(layer, stride):
    """Set the stride of a ResNet layer's first Bottleneck (its 3×3 conv and downsample) in place."""
    block = layer[0]
    block.conv2.stride = (stride, stride)
    if block.downsample is not None:
        block.downsample[0].stride = (stride, stride)
    return layer


def _reduction(in_ch, out_ch):
    conv = nn.Conv2d(in_ch, out_ch, 1, bias=False)
    bn = nn.BatchNorm2d(out_ch)
    nn.init.kaiming_normal_(conv.weight, mode="fan_in")
    nn.init.normal_(bn.weight, 1.0, 0.02)
    nn.init.zeros_(bn.bias)
    return nn.Sequential(conv, bn, nn.ReLU(inplace=True))


def _classifier(in_features, num_classes):
    fc = nn.Linear(in_features, num_classes)
    nn.init.kaiming_normal_(fc.weight, mode="fan_in")
    nn.init.zeros_(fc.bias)
    return fc


class MGN(nn.Module):
    """Multiple Granularity Network on ResNet-50 for ``[B, 3, H, W]`` images (384×128 in the papers).

    Args:
        num_classes: training identities (each of the 8 classifiers has this many outputs).
        pretrained: local torchvision ResNet-50 checkpoint; the shared trunk and all three branches
            start from it.
        feature_dim: width of each reduction (256; the test feature is ``8 × feature_dim``).
        reductions: ``"separate"`` (one 1×1 reduction per piece, as the MGN paper) or ``"shared"`` (one
            reduction applied to all 8 pieces, as the reproduction the PTL paper used).

    Attributes: ``stages`` (stem, layer1, layer2, layer3[0]), ``branches`` (p1, p2, p3, each
    ``Sequential(layer3=..., layer4=...)``), ``reductions`` and ``head`` (the 8 classifiers).

    ``forward(x)`` returns the mean logits ``[B, C]`` in training mode and the test feature
    ``[B, 8·feature_dim]`` in eval mode; ``forward(x, return_features=True)`` returns an
    :class:`MGNOutput` in either mode.
    """

    side_channels = 0
    head_name = "head"  # the 8 classifiers

    def __init__(self, num_classes, pretrained=None, feature_dim=FEATURES_PER_PIECE, reductions="separate"):
        super().__init__()
        if reductions not in MGN_REDUCTIONS:
            raise ValueError(f"reductions must be one of {', '.join(MGN_REDUCTIONS)}, got {reductions!r}")
        for name, value in (("num_classes", num_classes), ("feature_dim", feature_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:  # ValueError for a bool too
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        resnet = resnet50(pretrained=pretrained)
        stem = nn.Sequential(OrderedDict(conv1=resnet.conv1, bn1=resnet.bn1, relu=resnet.relu, maxpool=resnet.maxpool))
        self.stages = nn.ModuleList([stem, resnet.layer1, resnet.layer2, resnet.layer3[0]])
        layer3_rest = nn.Sequential(*resnet.layer3[1:])
        self.branches = nn.ModuleList(
            nn.Sequential(
                OrderedDict(
                    layer3=copy.deepcopy(layer3_rest), layer4=_set_first_stride(copy.deepcopy(resnet.layer4), stride)
                )
            )
            for stride in BRANCH_STRIDES
        )
        self.num_pieces = len(BRANCH_STRIPES) + sum(n for n in BRANCH_STRIPES if n > 1)
        piece_ch = resnet.layer4[-1].conv3.out_channels + self.side_channels
        count = self.num_pieces if reductions == "separate" else 1
        self.reductions = nn.ModuleList(_reduction(piece_ch, feature_dim) for _ in range(count))
        self.head = nn.ModuleList(_classifier(feature_dim, num_classes) for _ in range(self.num_pieces))
        self.num_classes, self.feature_dim = num_classes, feature_dim * self.num_pieces

    def rollback_blocks(self):
        """No default blocks: the stages end at ``layer3[0]``, so the branches would never roll back.

        Raises ``TypeError`` asking for an explicit block list.
        """
        raise TypeError(
            f"rolling back: no default blocks for {type(self).__name__} (its three branches copy "
            "layer3[1:] and layer4); pass blocks=[[prefix, ...], ...]"
        )

    def branch_maps(self, x):
        """The three branch maps ``[B, 2048, h, w]`` (plus side-stream maps in subclasses) for images ``x``."""
        for stage in self.stages:
            x = stage(x)
        return [branch(x) for branch in self.branches]

    def forward(self, x, return_features=False):
        pieces = mgn_pieces(self.branch_maps(x))
        reductions = self.reductions if len(self.reductions) > 1 else [self.reductions[0]] * len(pieces)
        reduced = [r(p[:, :, None, None]).flatten(1) for r, p in zip(reductions, pieces)]
        features = torch.cat(reduced, 1)
        if not (return_features or self.training):
            return features
        piece_logits = tuple(fc(f) for fc, f in zip(self.head, reduced))
        logits = torch.stack(piece_logits).mean(0)
        if not return_features:
            return logits
        return MGNOutput(logits, features, piece_logits, tuple(reduced[: len(self.branches)]))


class MGNPTL(MGN):
    """MGN with the PTL side stream of the authors' released code (see the module docstring).

    Args as :class:`MGN` (``reductions`` too), plus ``v2`` (PTL-v2 cells, :class:`~ptl_ext.nn.BConvCellV2`,
    with ``momentum``) and ``update_fn`` (the cells' update, default the fused op). Attributes ``cells`` (the 5 trunk
    cells), ``fuses`` (4 fuse blocks) and ``branch_cells`` (one 512→128 cell per branch). The cells
    carry latent states by the rules of :mod:`ptl_ext.nn.cells`; reset them with
    :func:`ptl_ext.nn.reset_states`. Outputs as :class:`MGN`.
    """

    side_channels = BRANCH_CELL[1]

    def __init__(
        self,
        num_classes,
        pretrained=None,
        feature_dim=FEATURES_PER_PIECE,
        v2=False,
        momentum=0.5,
        update_fn=None,
        reductions="separate",
    ):
        super().__init__(num_classes, pretrained, feature_dim, reductions)
        self.cells = nn.ModuleList(make_cell(i, o, s, v2, momentum, update_fn) for i, o, s in SIDE_CELLS)
        self.fuses = nn.ModuleList(
            FuseBlock(x_ch, cell[1], out) for x_ch, cell, out in zip(TRUNK_CHANNELS, SIDE_CELLS[1:], SIDE_FUSES)
        )
        self.branch_cells = nn.ModuleList(
            make_cell(*BRANCH_CELL, stride, v2, momentum, update_fn) for stride in BRANCH_STRIDES
        )
        for module in (self.cells, self.fuses, self.branch_cells):
            for m in module.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in")

    def branch_maps(self, x):
        """Branch maps with their cell's map concatenated: 3 × ``[B, 2048 + 128, h, w]``."""
        y = self.cells[1](self.cells[0](x))
        for i, stage in enumerate(self.stages):
            x = stage(x)
            z = self.fuses[i](x, y)
            y = self.cells[i + 2](z) if i + 2 < len(self.cells) else z
        # every 3×3 stride-2 step here (cells and ResNet alike) maps n to ceil(n / 2): the sizes always agree
        return [torch.cat([branch(x), cell(y)], 1) for branch, cell in zip(self.branches, self.branch_cells)]
