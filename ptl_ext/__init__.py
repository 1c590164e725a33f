"""ptl-ext: progressive transfer learning for person re-identification.

Layers, lowest first: ``ops`` (compiled kernels) → ``nn`` (cells) → ``models``;
``data`` and ``reid`` stand alone; ``train`` uses data, models and reid.
"""

from . import models, nn, ops, reference
from .models import PTLDenseNet161, PTLResNet50

__version__ = "0.1.0"

__all__ = ["ops", "reference", "nn", "models", "PTLResNet50", "PTLDenseNet161", "__version__"]
