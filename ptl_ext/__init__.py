"""ptl-ext: progressive transfer learning for person re-identification.

Layers, lowest first: ``ops`` (compiled kernels) → ``nn`` (cells) → ``models``;
``data`` and ``reid`` stand alone; ``train`` uses data, models and reid.
"""

from . import models, nn, ops, reference
from .models import PTLDenseNet161, PTLResNet50

__version__ = "0.1.0"

_LAZY_SUBPACKAGES = ("data", "train")


def __getattr__(name):
    """Import ``ptl_ext.data`` / ``ptl_ext.train`` on first use, keeping ``import ptl_ext`` light."""
    if name in _LAZY_SUBPACKAGES:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ops", "reference", "nn", "models", "PTLResNet50", "PTLDenseNet161", "data", "train", "__version__"]
