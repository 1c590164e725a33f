"""The network and the loss of a run."""

from ..errors import OptionError


def input_size(spec):
    """``(H, W)`` of the run's images (resolved by :func:`~ptl_ext.runs.build_spec`)."""
    return spec.height, spec.width


def build_loss(spec):
    """The supervised loss of the run: MGN's, CE (+ triplet) for ReID, or CE for classification."""
    from ..train import ClassificationLoss, MGNLoss, ReIDLoss

    loss = spec.loss
    margin = None if loss.triplet_margin < 0 else loss.triplet_margin  # negative: soft margin
    if loss.loss == "mgn":
        return MGNLoss(margin, loss.triplet_weight, label_smoothing=loss.label_smoothing)
    if spec.task == "reid":
        return ReIDLoss(loss.label_smoothing, loss.triplet_weight, margin)
    return ClassificationLoss(loss.label_smoothing)


def build_model(spec, num_classes, size):
    """The network of ``spec.model.arch`` with its starting weights (``pretrained`` or ``init_from``).

    A dry forward at ``size`` checks that the images are large enough for the network.
    """
    import torch

    from ..models import create_model
    from ..nn import set_state_mode
    from ..train.checkpoint import load_weights_except_head

    options = spec.model
    torch.manual_seed(spec.seed)
    try:
        model = create_model(
            options.arch,
            num_classes,
            size,
            head=options.head,
            pretrained=options.pretrained,
            last_stride=options.last_stride,
            dropout=options.dropout,
            side_width=options.side_width,
        )
        _dry_run(model, size)
    except RuntimeError as exc:
        if "size" not in str(exc):
            raise
        raise OptionError(
            f"--height/--width {size[0]}x{size[1]}: the images are too small for --arch {options.arch} "
            f"({str(exc).splitlines()[0]})"
        ) from None
    if options.cell_state != "carry":
        set_state_mode(model, options.cell_state)
    if options.init_from and not spec.resume:  # a resume restores the weights (and the rollback snapshot) anyway
        load_weights_except_head(model, options.init_from, "--init-from")
    return model


def _dry_run(model, size):
    """One eval-mode forward of a zero image of ``size`` (cells start from zeros and keep no state)."""
    import torch

    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *size))
    finally:
        model.train()
