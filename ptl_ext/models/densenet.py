"""DenseNet-121/161 and DenseNet-BC-100 (CIFAR) with torchvision-compatible state-dict keys, split into stages."""

from collections import OrderedDict

import torch
from torch import nn

from .. import _checks
from .weights import densenet_legacy_keys, load_pretrained

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet_bc100"]


class _DenseLayer(nn.Module):
    """BN-ReLU-Conv1×1 (bottleneck) then BN-ReLU-Conv3×3 producing ``growth`` new channels."""

    def __init__(self, in_ch, growth, bn_size):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_ch)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_ch, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class _DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers; ``[B, in_ch, H, W] -> [B, in_ch + num_layers·growth, H, W]``."""

    def __init__(self, num_layers, in_ch, growth, bn_size):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = _DenseLayer(in_ch + i * growth, growth, bn_size)

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


def _transition(in_ch, out_ch):
    return nn.Sequential(
        OrderedDict(
            norm=nn.BatchNorm2d(in_ch),
            relu=nn.ReLU(inplace=True),
            conv=nn.Conv2d(in_ch, out_ch, 1, bias=False),
            pool=nn.AvgPool2d(2, 2),
        )
    )


class DenseNet(nn.Module):
    """DenseNet-BC for ``[B, 3, H, W]`` images returning ``[B, num_classes]`` logits; keys as torchvision's.

    ``small_input=True`` uses a CIFAR stem (a single 3×3 stride-1 ``conv0``) instead of the ImageNet one
    (7×7/2 conv, BN, ReLU, 3×3/2 max-pool). Transitions halve the channels (compression 0.5).
    :meth:`stages` gives the stem, then each dense block with its transition (the last one with
    ``norm5`` and a ReLU) for PTL.
    """

    head_name = "classifier"  # never rolled back

    def __init__(self, growth, block_config, init_features, bn_size=4, num_classes=1000, small_input=False):
        super().__init__()
        _checks.positive_int(num_classes, "num_classes")
        if small_input:
            stem = OrderedDict(conv0=nn.Conv2d(3, init_features, 3, 1, 1, bias=False))
        else:
            stem = OrderedDict(
                conv0=nn.Conv2d(3, init_features, 7, 2, 3, bias=False),
                norm0=nn.BatchNorm2d(init_features),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(3, 2, 1),
            )
        self.features = nn.Sequential(stem)
        self._stage_names = [list(stem)]
        ch = init_features
        for i, num_layers in enumerate(block_config, start=1):
            self.features.add_module(f"denseblock{i}", _DenseBlock(num_layers, ch, growth, bn_size))
            ch += num_layers * growth
            if i < len(block_config):
                self.features.add_module(f"transition{i}", _transition(ch, ch // 2))
                self._stage_names.append([f"denseblock{i}", f"transition{i}"])
                ch //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(ch))
        self._stage_names.append([f"denseblock{len(block_config)}", "norm5"])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def stages(self):
        """The backbone as ``[stem, block1+transition1, ..., last block+norm5+ReLU]`` (shared modules)."""
        stages = [
            nn.Sequential(OrderedDict((n, self.features.get_submodule(n)) for n in names))
            for names in self._stage_names
        ]
        stages[-1].add_module("relu5", self.relu)
        return stages

    def rollback_blocks(self):
        """Rolling-back blocks as module-name prefixes: the stem, then each dense block with its transition
        (the last with ``norm5``): ``[["features.conv0"], ["features.denseblock1", "features.transition1"], ...]``.
        """
        return [[f"features.{name}" for name in names] for names in self._stage_names]

    def forward(self, x):
        x = self.relu(self.features(x))
        return self.classifier(self.avgpool(x).flatten(1))


def _densenet(growth, block_config, init_features, pretrained, num_classes, small_input=False):
    model = DenseNet(growth, block_config, init_features, num_classes=num_classes, small_input=small_input)
    if pretrained is not None:
        load_pretrained(model, pretrained, rename=densenet_legacy_keys, classifier="classifier.")
    return model


def densenet121(pretrained=None, num_classes=1000):
    """DenseNet-121 (7,978,856 parameters with 1000 classes); ``pretrained``: local torchvision checkpoint path."""
    return _densenet(32, (6, 12, 24, 16), 64, pretrained, num_classes)


def densenet161(pretrained=None, num_classes=1000):
    """DenseNet-161 (28,681,000 parameters with 1000 classes); ``pretrained``: local torchvision checkpoint path."""
    return _densenet(48, (6, 12, 36, 24), 96, pretrained, num_classes)


def densenet_bc100(pretrained=None, num_classes=10):
    """DenseNet-BC-100 for 32×32 CIFAR images: growth 12, three blocks of 16 layers, 24-channel 3×3 stem."""
    return _densenet(12, (16, 16, 16), 24, pretrained, num_classes, small_input=True)
