"""Datasets (by name through the registry), image decoding, torch-op transforms, samplers, loaders and the
synthetic ReID and CIFAR generators.

Uses only the package's shared helpers (``_checks``, ``_lazy``). ``import ptl_ext.data`` loads only the
registry (no torch): the readers, loaders, generators and ``DataConfig`` are imported from their submodules
on first use.
"""

from .._lazy import lazy_attributes
from .registry import REID_DATASETS, DatasetInfo, get_dataset, list_datasets, load_dataset, load_reid_dataset

_SUBMODULES = {
    "cifar": ("load_cifar",),
    "config": ("DataConfig", "CIFAR_INPUT_SIZE"),
    "fashion_mnist": ("FashionMNISTProtocol", "fashion_mnist_protocol", "load_fashion_mnist"),
    "image": ("read_image", "write_image"),
    "loaders": (
        "ImageDataset",
        "TensorImageDataset",
        "build_dataloader",
        "build_reid_eval_loaders",
        "build_reid_loaders",
        "build_reid_train_loader",
    ),
    "reid_datasets": ("ReIDData", "cuhk03_np", "dukemtmc_reid", "market1501", "market_duke", "msmt17", "relabel"),
    "samplers": ("PKBatchSampler", "RandomBatchSampler", "ShardSampler"),
    "synthetic": ("make_synthetic_market",),
    "synthetic_cifar": ("make_synthetic_cifar", "synthetic_cifar_arrays"),
    "transforms": (
        "Compose",
        "Normalize",
        "RandomCrop",
        "RandomErasing",
        "RandomHorizontalFlip",
        "Resize",
        "ToFloat",
        "build_cifar_transforms",
        "build_reid_transforms",
    ),
}
_EXPORTS = {name: module for module, names in _SUBMODULES.items() for name in names}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = [
    "DatasetInfo",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "load_reid_dataset",
    "REID_DATASETS",
    *_EXPORTS,
]
