"""Build networks by name for the CLI and for checkpoints that must be rebuilt (``meta``)."""

from .. import models

BACKBONES = {
    "resnet34": models.resnet34,
    "resnet50": models.resnet50,
    "resnet101": models.resnet101,
    "densenet121": models.densenet121,
    "densenet161": models.densenet161,
    "densenet_bc100": models.densenet_bc100,
}
MGN_ARCHS = ("mgn", "mgn_ptl")
ARCHS = (tuple(BACKBONES) + tuple(f"ptl_{name}" for name in BACKBONES)
         + tuple(f"ptl_v2_{name}" for name in BACKBONES) + MGN_ARCHS)


def build_model(arch, num_classes, input_size, *, head="reid", pretrained=None, last_stride=1, v2=False,
                dropout=None):
    """A network named ``arch``: a plain backbone (``resnet50`` ...), its PTL version (``ptl_resnet50`` ...),
    its PTL-v2 version (``ptl_v2_resnet50`` ..., the same as ``v2=True``) or MGN (``mgn``, ``mgn_ptl``:
    :func:`build_mgn`).

    Plain backbones are :class:`ptl_ext.models.BackboneNet` (GAP + head); PTL networks use the
    paper's side-stream widths for ResNet-50, DenseNet-161 and DenseNet-BC-100 and the generic
    widths of :class:`ptl_ext.models.PTLNet` otherwise.

    Args:
        num_classes: head outputs; input_size: ``(H, W)`` of the training images (cell strides).
        head: ``"reid"`` or ``"cifar"``; pretrained: local torchvision checkpoint of the backbone.
        last_stride: ResNet layer4 stride (1 for ReID); v2: PTL-v2 cells (PTL networks only).
        dropout: the head's dropout (``None``: the head's default, 0.5 for ReID).
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    if arch in MGN_ARCHS:
        return build_mgn(arch, num_classes, head=head, pretrained=pretrained, v2=v2, dropout=dropout)
    if arch.startswith("ptl_v2_"):
        arch, v2 = "ptl_" + arch[len("ptl_v2_"):], True
    ptl = arch.startswith("ptl_")
    if v2 and not ptl:
        raise ValueError(f"v2 applies to PTL networks (ptl_*), not to {arch!r}")
    name = arch[4:] if ptl else arch
    input_size = tuple(input_size)
    common = {"head": head, "input_size": input_size, "dropout": dropout}
    options = {"last_stride": last_stride} if name.startswith("resnet") else {}
    if ptl and name == "resnet50":
        return models.PTLResNet50(num_classes, pretrained=pretrained, v2=v2, **common, **options)
    if ptl and name == "densenet161":
        return models.PTLDenseNet161(num_classes, pretrained=pretrained, v2=v2, **common)
    if ptl and name == "densenet_bc100":
        return models.ptl_densenet_bc100(num_classes, pretrained=pretrained, v2=v2, **common)
    stages = BACKBONES[name](pretrained=pretrained, **options).stages()
    if ptl:
        return models.PTLNet(stages, num_classes, v2=v2, **common)
    return models.BackboneNet(stages, num_classes, **common)


def model_from_checkpoint(state, source="checkpoint"):
    """The network described by a ``ptl train`` checkpoint's ``meta``, with the checkpoint's weights loaded.

    ``state``: the dict of :func:`ptl_ext.train.load_checkpoint`; ``source`` names it in errors.
    """
    meta = state.get("meta") or {}
    if "arch" not in meta:
        raise ValueError(f"{source}: no model description (meta); was it written by ptl train?")
    model = build_model(meta["arch"], meta["num_classes"], (meta["height"], meta["width"]), head=meta["head"],
                        last_stride=meta["last_stride"], v2=meta["v2"], dropout=meta["dropout"])
    model.load_state_dict(state["model"])
    return model


def build_mgn(arch, num_classes, *, head="reid", pretrained=None, v2=False, dropout=None):
    """``mgn`` (:class:`ptl_ext.models.MGN`) or ``mgn_ptl`` (:class:`ptl_ext.models.MGNPTL`, PTL-v2 cells with
    ``v2``). MGN has its own strides (any input size works; 384×128 in the papers), no dropout and ReID
    classifiers only."""
    if head != "reid":
        raise ValueError(f"{arch} is a ReID network (8 identity classifiers); it has no {head!r} head")
    if dropout:
        raise ValueError(f"{arch} has no dropout; got dropout={dropout}")
    if arch == "mgn":
        if v2:
            raise ValueError("v2 applies to PTL networks (ptl_*, mgn_ptl), not to 'mgn'")
        return models.MGN(num_classes, pretrained=pretrained)
    return models.MGNPTL(num_classes, pretrained=pretrained, v2=v2)


def count_parameters(model):
    """Number of trainable parameters (``int``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
