"""Export a trained plain backbone in the torchvision key format, so ``pretrained=PATH`` loads it.

A :class:`~ptl_ext.models.BackboneNet` keeps its stages under ``stages.0``, ``stages.1``, ... and its
classifier under ``head``; torchvision names the same tensors ``conv1``, ``layer1``, ... (ResNet) or
``features.*`` (DenseNet) and ``fc`` / ``classifier``. The export copies the stages into a fresh
backbone of the project (whose :meth:`stages` share modules with it) and the head, when it is a single
linear layer, into its classifier; the result is that backbone's ``state_dict``.
"""

import torch
from torch import nn

from .. import _io
from .densenet import DenseNet
from .heads import MLPHead
from .resnet import ResNet
from .staged import BackboneNet

__all__ = ["torchvision_state_dict", "save_torchvision_backbone"]


def _classifier_name(template):
    if isinstance(template, ResNet):
        return "fc"
    if isinstance(template, DenseNet):
        return "classifier"
    raise TypeError(f"template must be a ResNet or DenseNet of ptl_ext.models, got {type(template).__name__}")


def torchvision_state_dict(net, template):
    """The weights of ``net`` under torchvision's keys.

    Args:
        net: a :class:`BackboneNet` built on ``template``'s architecture (e.g. ``BackboneNet(resnet34().stages(),
            n, head="cifar", head_hidden=())``) whose head is one ``Linear(feature_dim, classes)``.
        template: a fresh backbone of the same architecture (``resnet34()``); it is overwritten.
    Returns:
        ``{key: tensor}`` with exactly ``template``'s keys, the classifier sized ``[classes, feature_dim]``.
    Raises:
        TypeError: ``net`` is not a BackboneNet or ``template`` not a ResNet/DenseNet.
        ValueError: the stages do not match the template's, or the head is not one linear layer.
    """
    if not isinstance(net, BackboneNet):
        raise TypeError(f"net must be a BackboneNet, got {type(net).__name__}")
    classifier = _classifier_name(template)
    stages = nn.ModuleList(template.stages())
    try:
        stages.load_state_dict(net.stages.state_dict())
    except RuntimeError as exc:
        raise ValueError(f"net's stages do not match the {type(template).__name__} template: {exc}") from None
    layers = list(net.head.layers) if isinstance(net.head, MLPHead) else []
    if len(layers) != 1 or not isinstance(layers[0], nn.Linear):
        raise ValueError(
            "net's head must be a single linear layer (a torchvision classifier); build it with "
            "head_hidden=() and no dropout"
        )
    linear = layers[0]
    fresh = nn.Linear(linear.in_features, linear.out_features)
    fresh.load_state_dict(linear.state_dict())
    setattr(template, classifier, fresh)
    return {key: value.detach().cpu().clone() for key, value in template.state_dict().items()}


def save_torchvision_backbone(path, net, template):
    """Write :func:`torchvision_state_dict` of ``net`` to ``path`` (a plain ``torch.save`` state dict, atomically);
    returns the state dict."""
    state = torchvision_state_dict(net, template)
    _io.atomic_write(path, lambda fh: torch.save(state, fh))
    return state
