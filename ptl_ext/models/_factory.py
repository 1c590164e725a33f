"""Building networks of the zoo by name."""

from .. import _checks
from ._registry import HEAD_INITS, HEAD_NAMES, MGN_REDUCTIONS
from ._zoo import model_info  # importing the zoo attaches its builders
from .staged import _check_input_size

__all__ = ["create_model", "count_parameters"]


def create_model(
    name,
    num_classes,
    input_size=None,
    *,
    head="reid",
    pretrained=None,
    last_stride=1,
    dropout=None,
    v2=False,
    side_width=1.0,
    head_init="torch",
    mgn_reductions="separate",
):
    """The network called ``name`` (see :func:`~ptl_ext.models.list_models`), freshly initialised.

    Args:
        name: a registered name (``resnet50``, ``ptl_resnet50``, ``ptl_v2_resnet50``, ``ptl_mgn`` ...) or an
            old alias (``mgn_ptl``).
        num_classes: head outputs (identities or classes), a positive int.
        input_size: ``(H, W)`` of the training images, which sets the PTL cells' strides (default: the
            network's own, 384×128 for MGN and 256×128 otherwise; MGN accepts any size).
        head: ``"reid"`` (three FC layers), ``"rolling_back"`` (512-D FC, BN, leaky ReLU, FC), ``"cifar"`` (two
            linear layers), ``"bnneck"`` / ``"bnneck_pre"`` (BNNeck, evaluating the feature after / before its
            BatchNorm); MGN has ReID heads only.
        pretrained: a local torchvision checkpoint of the backbone.
        last_stride: the last strided stage's stride, 1 (ReID) or 2 (ResNet layer4, MobileNetV2 features.14;
            the other families ignore it).
        dropout: the head's dropout (``None``: the head's default, 0.5 for ReID); MGN has none.
        v2: the old spelling of PTL-v2: ``ptl_NAME`` with ``v2=True`` builds ``ptl_v2_NAME``.
        side_width: scale of the PTL side stream's widths (:class:`~ptl_ext.models.PTLNet`); 1 is the
            papers' network. Backbone PTL networks only (not plain backbones, not MGN).
        head_init: ``"torch"`` (PyTorch's Linear default) or ``"he"`` (He et al. 2015) for the head's layers;
            backbone networks only (MGN's classifiers are always He-initialised).
        mgn_reductions: ``"separate"`` (8 reductions, the MGN paper) or ``"shared"`` (one, the reproduction the
            PTL paper ran); MGN networks only.

    Returns an ``nn.Module``: :class:`~ptl_ext.models.BackboneNet`, :class:`~ptl_ext.models.PTLNet`,
    :class:`~ptl_ext.models.MGN` or :class:`~ptl_ext.models.MGNPTL`. Bad arguments raise ``ValueError``
    or ``TypeError`` naming them.
    """
    info = model_info(name, v2)
    num_classes = _checks.positive_int(num_classes, "num_classes")
    input_size = info.input_size if input_size is None else _check_input_size(input_size)
    _checks.choice(head, "head", HEAD_NAMES)
    _checks.choice(last_stride, "last_stride", (1, 2))
    dropout = _checks.real(dropout, "dropout", 0.0, allow_none=True)
    side_width = _checks.real(side_width, "side_width", 0.0, exclusive_minimum=True)
    _checks.choice(head_init, "head_init", HEAD_INITS)
    _checks.choice(mgn_reductions, "mgn_reductions", MGN_REDUCTIONS)
    options = {"head": head, "pretrained": pretrained, "last_stride": last_stride, "dropout": dropout}
    if info.family == "mgn":
        if head_init != "torch":
            raise ValueError(
                f"head_init applies to the backbone networks, not to {info.name} (He-initialised classifiers)"
            )
        options["mgn_reductions"] = mgn_reductions
    else:
        if mgn_reductions != "separate":
            raise ValueError(f"mgn_reductions applies to the MGN networks, not to {info.name}")
        options["head_init"] = head_init
    if side_width != 1.0:
        if not info.ptl or info.family == "mgn":
            raise ValueError(
                f"side_width applies to the PTL networks of a backbone (ptl_resnet50, ptl_densenet161 ...), "
                f"not to {info.name}; got side_width={side_width}"
            )
        options["side_width"] = side_width
    return info.build(num_classes, input_size, **options)


def count_parameters(model):
    """Number of trainable parameters of ``model`` (``int``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
