"""Networks: torchvision-compatible backbones, the plain baseline, PTL networks, MGN, their heads and the
model zoo (:func:`create_model` / :func:`list_models`).

Uses ``ptl_ext.nn`` (the cells) and, through it, ``ptl_ext.ops``.
"""

from ._factory import count_parameters, create_model
from ._registry import ALIASES, ModelInfo, is_model, list_models, model_info, register_model, resolve_model_name
from ._zoo import build_backbone  # importing the zoo registers its networks
from .densenet import DenseNet, densenet121, densenet161, densenet_bc100
from .export import save_torchvision_backbone, torchvision_state_dict
from .heads import BNNeckHead, MLPHead, make_head
from .mgn import MGN, MGNPTL, MGNOutput
from .mobilenet import MobileNetV2, deep_sort_weights_path, mobilenet_v2
from .ptl import PTLDenseNet161, PTLNet, PTLResNet50, ptl_densenet_bc100
from .resnet import ResNet, resnet34, resnet50, resnet101
from .staged import BackboneNet, HeadedNet, probe_stages
from .weights import load_pretrained, load_state

__all__ = [
    "create_model",
    "list_models",
    "is_model",
    "model_info",
    "resolve_model_name",
    "register_model",
    "ModelInfo",
    "ALIASES",
    "count_parameters",
    "build_backbone",
    "ResNet",
    "resnet34",
    "resnet50",
    "resnet101",
    "DenseNet",
    "densenet121",
    "densenet161",
    "densenet_bc100",
    "MobileNetV2",
    "mobilenet_v2",
    "deep_sort_weights_path",
    "MLPHead",
    "BNNeckHead",
    "make_head",
    "HeadedNet",
    "BackboneNet",
    "probe_stages",
    "PTLNet",
    "PTLResNet50",
    "PTLDenseNet161",
    "ptl_densenet_bc100",
    "MGN",
    "MGNPTL",
    "MGNOutput",
    "load_pretrained",
    "load_state",
    "torchvision_state_dict",
    "save_torchvision_backbone",
]
