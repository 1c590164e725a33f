"""ResNet-34/50/101 with torchvision-compatible state-dict keys, split into stages for PTL."""

from collections import OrderedDict

from torch import nn

from .. import _checks
from .weights import load_pretrained

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet34", "resnet50", "resnet101"]


def _conv_bn(in_ch, out_ch, stride):
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with a residual; ``[B, in_ch, H, W] -> [B, ch, H/stride, W/stride]``."""

    expansion = 1

    def __init__(self, in_ch, ch, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(ch, ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided, as torchvision's v1.5) → 1×1 with a residual; output ``4·ch`` channels."""

    expansion = 4

    def __init__(self, in_ch, ch, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.conv3 = nn.Conv2d(ch, ch * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(ch * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet for ``[B, 3, H, W]`` images returning ``[B, num_classes]`` logits; keys as torchvision's.

    ``last_stride`` is layer4's stride (1 keeps a 16×8 map for 256×128 ReID inputs).
    :meth:`stages` gives the stem (conv1, bn1, relu, maxpool) and layer1..layer4 for PTL.
    """

    head_name = "fc"  # the classifier, never rolled back

    def __init__(self, block, layers, num_classes=1000, last_stride=2):
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        _checks.positive_int(num_classes, "num_classes")
        self.in_ch = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], last_stride)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, ch, blocks, stride):
        downsample = None
        if stride != 1 or self.in_ch != ch * block.expansion:
            downsample = _conv_bn(self.in_ch, ch * block.expansion, stride)
        layers = [block(self.in_ch, ch, stride, downsample)]
        self.in_ch = ch * block.expansion
        layers += [block(self.in_ch, ch) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def stages(self):
        """The backbone as ``[stem, layer1, layer2, layer3, layer4]`` (shared modules, no pooling or fc)."""
        stem = nn.Sequential(OrderedDict(conv1=self.conv1, bn1=self.bn1, relu=self.relu, maxpool=self.maxpool))
        return [stem, self.layer1, self.layer2, self.layer3, self.layer4]

    def rollback_blocks(self):
        """Rolling-back blocks ``B1..B5`` as module-name prefixes:
        ``[["conv1", "bn1"], ["layer1"], ..., ["layer4"]]``."""
        return [["conv1", "bn1"]] + [[f"layer{i}"] for i in range(1, 5)]

    def forward(self, x):
        for stage in self.stages():
            x = stage(x)
        return self.fc(self.avgpool(x).flatten(1))


def _resnet(block, layers, pretrained, num_classes, last_stride):
    model = ResNet(block, layers, num_classes, last_stride)
    if pretrained is not None:
        load_pretrained(model, pretrained, classifier="fc.")
    return model


def resnet34(pretrained=None, num_classes=1000, last_stride=2):
    """ResNet-34 (21.8 M parameters with 1000 classes); ``pretrained``: local torchvision checkpoint path."""
    return _resnet(BasicBlock, [3, 4, 6, 3], pretrained, num_classes, last_stride)


def resnet50(pretrained=None, num_classes=1000, last_stride=2):
    """ResNet-50 (25,557,032 parameters with 1000 classes); ``pretrained``: local torchvision checkpoint path."""
    return _resnet(Bottleneck, [3, 4, 6, 3], pretrained, num_classes, last_stride)


def resnet101(pretrained=None, num_classes=1000, last_stride=2):
    """ResNet-101 (44.5 M parameters with 1000 classes); ``pretrained``: local torchvision checkpoint path."""
    return _resnet(Bottleneck, [3, 4, 23, 3], pretrained, num_classes, last_stride)
