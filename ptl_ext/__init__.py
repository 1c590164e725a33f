"""ptl-ext: progressive transfer learning for person re-identification.

Layers, lowest first: ``ops`` (the compiled kernels with their fallbacks; the pure-PyTorch twins in
``reference`` sit beside it) -> ``nn`` (the BConv-Cells) -> ``models`` (backbones, PTL networks, MGN, the
model zoo). Beside them, ``reid`` (distances, re-ranking, metrics) sits on the ``ops`` layer, and ``data``
(datasets, transforms, loaders) uses only the shared helpers (``_checks``). ``train`` sits on ``models``, ``nn``
and ``reid``; ``deploy`` (feature extraction, export, ranked-result pictures) sits on ``models``, ``data``,
``reid`` and ``train``'s checkpoints; the ``ptl`` command line wires ``train``, ``deploy`` and ``data``. No
module imports a layer above its own.

``import ptl_ext`` imports none of them: each subpackage (and ``PTLResNet50`` / ``PTLDenseNet161``) is
imported on first use.
"""

from ._lazy import lazy_attributes

__version__ = "0.1.0"

_EXPORTS = {
    "ops": "ops",
    "reference": "reference",
    "nn": "nn",
    "models": "models",
    "reid": "reid",
    "data": "data",
    "train": "train",
    "deploy": "deploy",
    "info": "info",
    "PTLResNet50": "models",
    "PTLDenseNet161": "models",
    "FeatureExtractor": "deploy",
    "export_model": "deploy",
    "write_ranked_results": "deploy",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = [*_EXPORTS, "__version__"]
