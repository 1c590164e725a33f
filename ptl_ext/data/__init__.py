"""Datasets, image decoding, torch-op transforms, samplers, loaders and the synthetic ReID and CIFAR generators.

Stands alone: imports neither ``ptl_ext.models`` nor ``ptl_ext.train``.
"""

from .cifar import load_cifar
from .image import read_image, write_image
from .loaders import (
    ImageDataset,
    TensorImageDataset,
    build_dataloader,
    build_reid_eval_loaders,
    build_reid_loaders,
    build_reid_train_loader,
)
from .registry import REID_DATASETS, DatasetInfo, get_dataset, list_datasets, load_dataset, load_reid_dataset
from .reid_datasets import ReIDData, cuhk03_np, dukemtmc_reid, market1501, market_duke, msmt17, relabel
from .samplers import PKBatchSampler, ShardSampler
from .synthetic import make_synthetic_market
from .synthetic_cifar import make_synthetic_cifar, synthetic_cifar_arrays
from .transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    build_cifar_transforms,
    build_reid_transforms,
)

__all__ = [
    "DatasetInfo", "get_dataset", "list_datasets", "load_dataset",
    "REID_DATASETS", "ReIDData", "cuhk03_np", "dukemtmc_reid", "load_reid_dataset", "market1501",
    "market_duke", "msmt17", "relabel", "load_cifar", "read_image", "write_image",
    "ImageDataset", "TensorImageDataset", "build_dataloader", "build_reid_eval_loaders", "build_reid_loaders",
    "build_reid_train_loader",
    "PKBatchSampler", "ShardSampler", "make_synthetic_market", "make_synthetic_cifar", "synthetic_cifar_arrays",
    "Compose", "Normalize", "RandomCrop", "RandomErasing", "RandomHorizontalFlip", "Resize", "ToFloat",
    "build_cifar_transforms", "build_reid_transforms",
]
