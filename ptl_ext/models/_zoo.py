"""The registered networks: each backbone plain (``NAME``), with PTL (``ptl_NAME``) and with PTL-v2
(``ptl_v2_NAME``), and MGN (``mgn``, ``ptl_mgn``, ``ptl_v2_mgn``).

Plain backbones are :class:`~ptl_ext.models.BackboneNet` (GAP + head). PTL networks use the paper's
side-stream widths for ResNet-50, DenseNet-161 and DenseNet-BC-100 and the generic widths of
:class:`~ptl_ext.models.PTLNet` otherwise.
"""

from ._registry import (  # noqa: F401  (re-exported: ptl_ext.models reads the registry once the builders are in)
    ALIASES,
    MGN_INPUT_SIZE,
    ModelInfo,
    is_model,
    list_models,
    model_info,
    register_model,
    resolve_model_name,
)
from .densenet import densenet121, densenet161, densenet_bc100
from .mgn import MGN, MGNPTL
from .mobilenet import mobilenet_v2
from .ptl import PTLDenseNet161, PTLNet, PTLResNet50, ptl_densenet_bc100
from .resnet import resnet34, resnet50, resnet101
from .staged import BackboneNet

_BACKBONES = {
    "resnet34": ("resnet", resnet34),
    "resnet50": ("resnet", resnet50),
    "resnet101": ("resnet", resnet101),
    "densenet121": ("densenet", densenet121),
    "densenet161": ("densenet", densenet161),
    "densenet_bc100": ("densenet", densenet_bc100),
    "mobilenet_v2": ("mobilenet", mobilenet_v2),
}
_LAST_STRIDE_FAMILIES = ("resnet", "mobilenet")
_PAPER_PTL = {"resnet50": PTLResNet50, "densenet161": PTLDenseNet161, "densenet_bc100": ptl_densenet_bc100}


def build_backbone(name, pretrained=None, **options):
    """The raw backbone ``name`` (``resnet50``, ``densenet161`` ...: a torchvision-keyed ``ResNet``/``DenseNet``
    with ``.stages()``), from a local ``pretrained`` checkpoint when given; ``options`` go to its builder
    (``last_stride`` for ResNets and MobileNetV2)."""
    if name not in _BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(_BACKBONES)}, got {name!r}")
    return _BACKBONES[name][1](pretrained=pretrained, **options)


def _backbone_builder(name, ptl, v2):
    """The builder of backbone ``name``: plain, PTL or PTL-v2."""
    family, backbone = _BACKBONES[name]

    def build(num_classes, input_size, *, head, pretrained, last_stride, dropout, side_width=1.0, head_init="torch"):
        options = {"last_stride": last_stride} if family in _LAST_STRIDE_FAMILIES else {}
        common = {"head": head, "input_size": input_size, "dropout": dropout, "head_init": head_init}
        if ptl and name in _PAPER_PTL:
            return _PAPER_PTL[name](
                num_classes, pretrained=pretrained, v2=v2, side_width=side_width, **common, **options
            )
        stages = backbone(pretrained=pretrained, **options).stages()
        if ptl:
            return PTLNet(stages, num_classes, v2=v2, side_width=side_width, **common)
        return BackboneNet(stages, num_classes, **common)

    return build


def _mgn_builder(name, ptl, v2):
    """The builder of MGN (:class:`~ptl_ext.models.MGN`) or MGN+PTL (:class:`~ptl_ext.models.MGNPTL`).

    MGN has its own strides (any input size works), no dropout, ReID classifiers only (He-initialised,
    ``head_init`` does not apply) and ResNet-50's default layer4 strides inside its branches
    (``last_stride`` does not apply); ``mgn_reductions``: ``"separate"`` or ``"shared"``.
    """

    def build(num_classes, input_size, *, head, pretrained, last_stride, dropout, mgn_reductions="separate"):
        if head != "reid":
            raise ValueError(f"{name} is a ReID network (8 identity classifiers); it has no {head!r} head")
        if dropout:
            raise ValueError(f"{name} has no dropout; got dropout={dropout}")
        if ptl:
            return MGNPTL(num_classes, pretrained=pretrained, v2=v2, reductions=mgn_reductions)
        return MGN(num_classes, pretrained=pretrained, reductions=mgn_reductions)

    return build


def _register_zoo():
    for name, (family, _) in _BACKBONES.items():
        register_model(name, family=family)(_backbone_builder(name, False, False))
        register_model(f"ptl_{name}", family=family)(_backbone_builder(name, True, False))
        register_model(f"ptl_v2_{name}", family=family)(_backbone_builder(name, True, True))
    for name, ptl, v2 in (("mgn", False, False), ("ptl_mgn", True, False), ("ptl_v2_mgn", True, True)):
        register_model(name, family="mgn", input_size=MGN_INPUT_SIZE)(_mgn_builder(name, ptl, v2))


_register_zoo()
