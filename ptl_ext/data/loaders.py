"""Torch datasets over decoded images and the DataLoader setup (workers, pinned memory, seeding)."""

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import _checks
from ..errors import DataError
from .image import check_images, read_image
from .samplers import PKBatchSampler, RandomBatchSampler, ShardSampler
from .transforms import build_reid_transforms


class ImageDataset(Dataset):
    """ReID items ``(path, pid, camid)`` → ``(image, pid, camid)``.

    ``image`` is ``transform(uint8 [3, H, W])`` (the raw ``uint8`` tensor without a transform).
    """

    def __init__(self, items, transform=None):
        self.items = list(items)
        self.transform = transform

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, pid, camid = self.items[index]
        image = read_image(path)
        if self.transform is not None:
            image = self.transform(image)
        return image, pid, camid

    @property
    def pids(self):
        """Identity label of every item, in order."""
        return [pid for _, pid, _ in self.items]

    def check_files(self, what="images", decode=False):
        """Check that every image file exists and is readable (:func:`~ptl_ext.data.image.check_images`)."""
        check_images([path for path, _, _ in self.items], what, decode)


class TensorImageDataset(Dataset):
    """In-memory images ``uint8 [N, 3, H, W]`` and labels ``int64 [N]`` → ``(transform(image), label)``."""

    def __init__(self, images, labels, transform=None):
        if images.dim() != 4 or labels.dim() != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"TensorImageDataset: expected images [N, C, H, W] and labels [N], got "
                f"{list(images.shape)} and {list(labels.shape)}"
            )
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, index):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def seed_worker(worker_id):
    """Seed numpy and ``random`` in a DataLoader worker from its torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(
    dataset,
    batch_size=None,
    batch_sampler=None,
    sampler=None,
    shuffle=False,
    num_workers=0,
    pin_memory=None,
    drop_last=False,
    seed=0,
):
    """A ``DataLoader`` with seeded workers and pinned memory on CUDA machines.

    The loader owns a ``torch.Generator`` seeded with ``seed`` (its ``generator`` attribute),
    from which every epoch's worker seeds (and, with ``shuffle``, the order) are drawn, so a
    trainer can save and restore it for an exact resume. Workers are therefore started per
    epoch (persistent workers would keep their random streams across epochs).
    ``pin_memory=None`` pins when CUDA is available.
    """
    if batch_sampler is None and (batch_size is None or batch_size < 1):
        raise ValueError(
            f"build_dataloader: batch_size must be a positive int without a batch_sampler, got {batch_size}"
        )
    if num_workers < 0:
        raise ValueError(f"build_dataloader: num_workers must be >= 0, got {num_workers}")
    if drop_last and batch_sampler is None and hasattr(dataset, "__len__"):
        items = len(sampler) if sampler is not None and hasattr(sampler, "__len__") else len(dataset)
        if items < batch_size:
            raise DataError(
                f"build_dataloader: the data has {items} item(s), fewer than one batch of batch_size={batch_size} "
                "(the last partial batch is dropped, so nothing would be trained): lower the batch size"
            )
    generator = torch.Generator()
    generator.manual_seed(seed)
    options = dict(
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        worker_init_fn=seed_worker,
        generator=generator,
    )
    if batch_sampler is not None:
        return DataLoader(dataset, batch_sampler=batch_sampler, **options)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=shuffle and sampler is None,
        drop_last=drop_last,
        **options,
    )


def check_batch_memory(images, height, width, what):
    """Refuse batches of ``images`` float32 ``[3, height, width]`` images larger than the machine allows
    (:func:`ptl_ext._checks.allocation`); ``what`` names the options (``"--p 16 x --k 4"``)."""
    _checks.allocation(images * 3 * height * width * 4, f"a batch of {what} images of {height}x{width}")


def build_reid_eval_loaders(data, height, width, eval_batch_size=128, num_workers=0, rank=0, world_size=1):
    """Query and gallery loaders of a ``ReIDData`` (test transforms, in order, sharded over ranks).

    Returns:
        ``(query_loader, gallery_loader)`` of ``(image, pid, camid)`` batches.
    """
    check_batch_memory(eval_batch_size, height, width, f"eval_batch_size={eval_batch_size}")
    transform = build_reid_transforms(height, width, False)
    loaders = []
    for items in (data.query, data.gallery):
        dataset = ImageDataset(items, transform)
        loaders.append(
            build_dataloader(
                dataset,
                batch_size=eval_batch_size,
                sampler=ShardSampler(len(dataset), rank, world_size),
                num_workers=num_workers,
            )
        )
    return tuple(loaders)


def build_reid_train_loader(
    data,
    height,
    width,
    p=16,
    k=4,
    num_workers=0,
    seed=0,
    rank=0,
    world_size=1,
    erasing_p=0.5,
    padding=10,
    sampler="pk",
    batch_size=None,
):
    """The augmented training loader of a ``ReIDData``: P×K batches (``sampler="pk"``, a
    :class:`PKBatchSampler`) or ``batch_size`` images drawn uniformly (``sampler="random"``, a
    :class:`RandomBatchSampler`, e.g. for cross-entropy-only training), split over ranks; the trainer sets
    the sampler's epoch.

    Raises :class:`~ptl_ext.errors.DataError` when the training split has fewer than 2 identities
    (nothing to tell apart: the classification loss is 0 from the first step and a triplet has no negative).
    """
    check_batch_memory(p * k, height, width, f"p={p} x k={k}")
    identities = len({pid for _, pid, _ in data.train})
    if identities < 2:
        raise DataError(
            f"{data.name}: the training split has {identities} identity (at least 2 are needed: with one "
            f"there is nothing to tell apart); check the dataset folder {data.root or ''}".rstrip()
        )
    check_images([path for path, _, _ in data.train], "the training split")  # headers: before any training
    train_set = ImageDataset(
        data.train, build_reid_transforms(height, width, True, padding=padding, erasing_p=erasing_p)
    )
    if sampler == "random":
        batches = RandomBatchSampler(len(train_set), batch_size, seed=seed, rank=rank, world_size=world_size)
    elif sampler == "pk":
        batches = PKBatchSampler(train_set.pids, p, k, seed=seed, rank=rank, world_size=world_size)
    else:
        raise ValueError(f"sampler must be 'pk' or 'random', got {sampler!r}")
    return build_dataloader(train_set, batch_sampler=batches, num_workers=num_workers, seed=seed + rank)


def build_reid_loaders(
    data,
    height,
    width,
    p=16,
    k=4,
    eval_batch_size=128,
    num_workers=0,
    seed=0,
    rank=0,
    world_size=1,
    erasing_p=0.5,
    padding=10,
):
    """``(train_loader, query_loader, gallery_loader)``: :func:`build_reid_train_loader` and
    :func:`build_reid_eval_loaders` together."""
    train_loader = build_reid_train_loader(
        data, height, width, p, k, num_workers, seed, rank, world_size, erasing_p, padding
    )
    return (train_loader, *build_reid_eval_loaders(data, height, width, eval_batch_size, num_workers, rank, world_size))
