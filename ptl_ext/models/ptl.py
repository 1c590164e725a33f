"""PTL networks: a side stream of BConv-Cells and 1×1 fuse blocks running beside any staged backbone.

With stage outputs ``x_1..x_N`` (stem first), following the authors' released MGN+PTL code::

    y_0 = cell_0(image)                       # 3 → c_0
    y_1 = cell_1(y_0)                         # now at the stem's size
    z_i = ReLU(BN(Conv1x1(cat[x_i, y_i])))    # i = 1..N-1
    y_{i+1} = cell_{i+1}(z_i)                 # stride reaches x_{i+1}'s size
    feature = GAP(ReLU(BN(Conv1x1(cat[x_N, y_N]))))

Cell strides come from a dry run of the backbone at ``input_size``.
"""

import math

import torch
from torch import nn

from .. import _checks
from ..nn import BConvCell, BConvCellV2
from .densenet import densenet161, densenet_bc100
from .heads import make_head
from .resnet import resnet50
from .staged import HeadedNet, probe_stages

__all__ = [
    "PTLNet",
    "PTLResNet50",
    "PTLDenseNet161",
    "ptl_densenet_bc100",
    "FuseBlock",
    "make_cell",
    "side_stream_strides",
    "default_widths",
]

RESNET50_WIDTHS = ((16, 32, 64, 256, 512, 256), (64, 128, 256, 512))
DENSENET161_WIDTHS = ((16, 32, 64, 128, 256, 256), (96, 128, 256, 512))
DENSENET_BC100_WIDTHS = ((16, 16, 32, 64, 64), (24, 64, 96))


def make_cell(in_ch, out_ch, stride, v2=False, momentum=0.5, update_fn=None):
    """A 3×3 :class:`~ptl_ext.nn.BConvCell` (or :class:`~ptl_ext.nn.BConvCellV2` when ``v2``)."""
    if v2:
        return BConvCellV2(in_ch, out_ch, 3, stride, momentum=momentum, update_fn=update_fn)
    return BConvCell(in_ch, out_ch, 3, stride, update_fn=update_fn)


class FuseBlock(nn.Module):
    """``ReLU(BN(Conv1x1(cat[x, y])))``: ``[B, Cx, H, W]``, ``[B, Cy, H, W]`` -> ``[B, out_ch, H, W]``."""

    def __init__(self, x_ch, y_ch, out_ch):
        super().__init__()
        self.conv = nn.Conv2d(x_ch + y_ch, out_ch, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, y):
        if x.shape[-2:] != y.shape[-2:]:
            raise RuntimeError(
                f"FuseBlock: backbone map {tuple(x.shape[-2:])} and side-stream map {tuple(y.shape[-2:])} differ "
                "in size; the cell strides were derived for another input size (see PTLNet input_size)"
            )
        return self.relu(self.bn(self.conv(torch.cat([x, y], 1))))


def _stride(src, dst, what):
    s = max(1, round(src[0] / dst[0]))
    if any(math.ceil(a / s) != b for a, b in zip(src, dst)):
        raise ValueError(f"cannot reach {what} size {tuple(dst)} from {tuple(src)} with one strided 3×3 cell")
    return s


def side_stream_strides(input_size, stage_sizes):
    """Strides of the ``N + 1`` cells for an image of ``input_size`` and stage output sizes ``[(H, W), ...]``.

    The first two cells share the stem's total stride (2 then the rest when it is even); each later cell
    goes from stage ``i``'s size to stage ``i + 1``'s.
    """
    total = _stride(input_size, stage_sizes[0], "the stem's")
    first = 2 if total % 2 == 0 else 1
    strides = [first, total // first]
    for i in range(1, len(stage_sizes)):
        strides.append(_stride(stage_sizes[i - 1], stage_sizes[i], f"stage {i}'s"))
    return strides


def default_widths(stage_channels):
    """Generic side-stream widths for stage channels ``C_1..C_N``: cells ``16, 32, C_i/4``; fuses ``C_1, C_i/2``."""
    cells = (16, 32) + tuple(max(16, c // 4) for c in stage_channels[1:])
    fuses = tuple(c if i == 0 else max(16, c // 2) for i, c in enumerate(stage_channels[:-1]))
    return cells, fuses


class PTLNet(HeadedNet):
    """Progressive transfer learning network: any staged backbone plus a side stream of BConv-Cells.

    Args:
        stages: modules run in sequence on ``[B, 3, H, W]`` images (e.g. ``resnet50().stages()``);
            kept as ``self.stages`` (for rolling back, stage ``i`` is block ``B(i+1)``).
        num_classes: classifier outputs.
        cell_channels: ``N + 1`` cell output widths (default :func:`default_widths`).
        fuse_channels: ``N - 1`` fuse block widths.
        side_width: scale of every cell and fuse width (given or default), each at least 4; 1 (default)
            is the papers' network, 0.5 a side stream of half width (an ablation).
        feature_dim: width of the final fusion = feature size (default: the last stage's channels).
        v2: use :class:`~ptl_ext.nn.BConvCellV2` (PTL-v2) with ``momentum``.
        head, head_hidden, dropout, head_init: the classifier (see :func:`ptl_ext.models.heads.make_head`).
        input_size: ``(H, W)`` of the dry run deriving the cell strides; other input sizes work when
            every stage scales the same way (e.g. 32×32 for a ResNet built at 256×128).
        update_fn: the cells' update function (default the fused :func:`ptl_ext.ops.bconv_cell_update`).

    ``forward`` follows :class:`~ptl_ext.models.staged.HeadedNet`; features are ``[B, feature_dim]``.
    """

    def __init__(
        self,
        stages,
        num_classes,
        *,
        cell_channels=None,
        fuse_channels=None,
        feature_dim=None,
        v2=False,
        momentum=0.5,
        head="reid",
        head_hidden=None,
        dropout=None,
        input_size=(256, 128),
        update_fn=None,
        side_width=1.0,
        head_init="torch",
    ):
        super().__init__()
        side_width = _checks.real(side_width, "side_width", 0.0, exclusive_minimum=True)
        self.stages = nn.ModuleList(stages)
        self.stage_shapes = probe_stages(self.stages, input_size)  # also validates input_size
        stage_channels = [s[0] for s in self.stage_shapes]
        n = len(stage_channels)
        default_cells, default_fuses = default_widths(stage_channels)
        cell_channels = tuple(default_cells if cell_channels is None else cell_channels)
        fuse_channels = tuple(default_fuses if fuse_channels is None else fuse_channels)
        if len(cell_channels) != n + 1:
            raise ValueError(f"cell_channels needs {n + 1} widths for {n} stages, got {len(cell_channels)}")
        if len(fuse_channels) != n - 1:
            raise ValueError(f"fuse_channels needs {n - 1} widths for {n} stages, got {len(fuse_channels)}")
        self.feature_dim = stage_channels[-1] if feature_dim is None else feature_dim
        for name, widths in (
            ("cell_channels", cell_channels),
            ("fuse_channels", fuse_channels),
            ("feature_dim", (self.feature_dim,)),
        ):
            if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
                raise ValueError(f"{name} must hold positive ints, got {widths!r}")
        if side_width != 1.0:
            cell_channels, fuse_channels = (
                tuple(max(4, int(w * side_width)) for w in widths) for widths in (cell_channels, fuse_channels)
            )
        strides = side_stream_strides(input_size, [s[1:] for s in self.stage_shapes])
        cell_inputs = (3, cell_channels[0]) + fuse_channels
        self.cells = nn.ModuleList(
            make_cell(i, o, s, v2, momentum, update_fn) for i, o, s in zip(cell_inputs, cell_channels, strides)
        )
        self.fuses = nn.ModuleList(
            FuseBlock(stage_channels[i], cell_channels[i + 1], fuse_channels[i]) for i in range(n - 1)
        )
        self.final_fuse = FuseBlock(stage_channels[-1], cell_channels[-1], self.feature_dim)
        self.head = make_head(head, self.feature_dim, num_classes, head_hidden, dropout, head_init)
        self.cell_channels, self.fuse_channels, self.cell_strides = cell_channels, fuse_channels, tuple(strides)

    def forward_features(self, x):
        y = self.cells[1](self.cells[0](x))
        last = len(self.stages) - 1
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i < last:
                y = self.cells[i + 2](self.fuses[i](x, y))
        return self.final_fuse(x, y).mean((2, 3))


class PTLResNet50(PTLNet):
    """PTL-ResNet-50 for ReID (cells 16, 32, 64, 256, 512, 256; fuses 64, 128, 256, 512; feature 2048).

    ``pretrained``: local torchvision ResNet-50 checkpoint; ``v2=True`` for PTL-v2; ``last_stride``:
    layer4's stride. Other keyword arguments go to :class:`PTLNet` (widths, head, ``update_fn`` ...).
    """

    def __init__(self, num_classes, pretrained=None, v2=False, last_stride=1, **kwargs):
        cells, fuses = RESNET50_WIDTHS
        kwargs.setdefault("cell_channels", cells)
        kwargs.setdefault("fuse_channels", fuses)
        backbone = resnet50(pretrained=pretrained, last_stride=last_stride)
        super().__init__(backbone.stages(), num_classes, v2=v2, **kwargs)


class PTLDenseNet161(PTLNet):
    """PTL-DenseNet-161 for ReID (cells 16, 32, 64, 128, 256, 256; fuses 96, 128, 256, 512; feature 2208).

    Stages: stem, then dense blocks 1..4 with their transitions. ``pretrained``: local torchvision
    DenseNet-161 checkpoint (old key format too); ``v2=True`` for PTL-v2. Other keyword arguments go
    to :class:`PTLNet`.
    """

    def __init__(self, num_classes, pretrained=None, v2=False, **kwargs):
        cells, fuses = DENSENET161_WIDTHS
        kwargs.setdefault("cell_channels", cells)
        kwargs.setdefault("fuse_channels", fuses)
        backbone = densenet161(pretrained=pretrained)
        super().__init__(backbone.stages(), num_classes, v2=v2, **kwargs)


def ptl_densenet_bc100(num_classes=10, pretrained=None, v2=False, **kwargs):
    """PTL on DenseNet-BC-100 for 32×32 CIFAR images, with the two-layer CIFAR head.

    Cells 16, 16, 32, 64, 64; fuses 24, 64, 96; feature 342. Keyword arguments go to :class:`PTLNet`.
    """
    cells, fuses = DENSENET_BC100_WIDTHS
    kwargs.setdefault("cell_channels", cells)
    kwargs.setdefault("fuse_channels", fuses)
    kwargs.setdefault("head", "cifar")
    kwargs.setdefault("input_size", (32, 32))
    backbone = densenet_bc100(pretrained=pretrained)
    return PTLNet(backbone.stages(), num_classes, v2=v2, **kwargs)
