"""The device a run asks for."""

from ..errors import OptionError


def select_device(name):
    """``torch.device`` for ``--device`` (default: CUDA when available)."""
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionError(f"--device {name}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"--device {name}: CUDA is not available")
    return device
