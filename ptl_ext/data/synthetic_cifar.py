"""A synthetic CIFAR-10/100 set in the python-pickle release layout, for tests and demos.

Each class has a prototype: a coarse random colour grid (4×4 cells, smoothly upsampled to 32×32).
An image is its class prototype shifted by up to ``max_shift`` pixels, mirrored at random, with a
random brightness change and Gaussian pixel noise, so the classes are easy to tell apart but no two
images are equal. Everything is drawn from ``numpy.random.default_rng(seed)``: the same seed writes
the same bytes.
"""

import os
import pickle

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks, _io
from .cifar import _LAYOUTS as CIFAR_LAYOUTS

__all__ = ["make_synthetic_cifar", "synthetic_cifar_arrays"]

_GRID = 4


def _prototypes(rng, num_classes):
    grids = rng.uniform(0, 255, (num_classes, 3, _GRID, _GRID)).astype(np.float32)
    up = F.interpolate(torch.from_numpy(grids), size=(32, 32), mode="bicubic", align_corners=False)
    return up.numpy()


def _sample(rng, prototypes, labels, max_shift, noise):
    images = prototypes[labels]
    out = np.empty_like(images)
    for n, image in enumerate(images):
        dy, dx = rng.integers(-max_shift, max_shift + 1, 2)
        image = np.roll(image, (int(dy), int(dx)), axis=(1, 2))
        if rng.random() < 0.5:
            image = image[:, :, ::-1]
        out[n] = image * rng.uniform(0.8, 1.2) + rng.normal(0.0, noise, image.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(len(labels), 3 * 32 * 32)


def synthetic_cifar_arrays(num_classes=10, train_per_class=50, test_per_class=10, seed=0, max_shift=3, noise=12.0):
    """Synthetic CIFAR images in memory.

    Returns:
        ``{"train": (data, labels), "test": (data, labels)}`` with ``data`` ``uint8 [N, 3072]`` (the
        pickles' row layout: 1024 red, 1024 green, 1024 blue values) and ``labels`` ``int64 [N]``,
        classes interleaved in a seeded random order.
    """
    for name, value in (
        ("num_classes", num_classes),
        ("train_per_class", train_per_class),
        ("test_per_class", test_per_class),
    ):
        _checks.positive_int(value, f"synthetic CIFAR: {name}")
    if not isinstance(max_shift, int) or not 0 <= max_shift < 16:
        raise ValueError(f"synthetic CIFAR: max_shift must be an int in [0, 16), got {max_shift!r}")
    if noise < 0:
        raise ValueError(f"synthetic CIFAR: noise must be >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, num_classes)
    out = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))
        out[split] = (_sample(rng, prototypes, labels, max_shift, noise), labels)
    return out


def _write_pickle(path, obj):
    _io.atomic_write(path, lambda fh: pickle.dump(obj, fh, protocol=2))


def make_synthetic_cifar(out, num_classes=10, train_per_class=50, test_per_class=10, seed=0):
    """Write a synthetic CIFAR-``num_classes`` set under ``out`` in the release layout.

    CIFAR-10: ``out/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` (the training
    images split over the five batches); CIFAR-100: ``out/cifar-100-python/{train, test, meta}`` with
    fine and coarse labels (coarse = fine // 5). Keys are bytes, as the release's pickles read with
    ``encoding="bytes"``; :func:`ptl_ext.data.load_cifar` reads the result.

    Returns ``{"folder": path, "train": N_train, "test": N_test}``. Raises ``FileExistsError`` when
    the batches folder already holds files.
    """
    if num_classes not in CIFAR_LAYOUTS:
        raise ValueError(f"synthetic CIFAR: num_classes must be 10 or 100, got {num_classes!r}")
    folder_name, train_files, test_files, label_key = CIFAR_LAYOUTS[num_classes]
    folder = os.path.join(os.fspath(out), folder_name)
    if os.path.isdir(folder) and os.listdir(folder):
        raise FileExistsError(f"synthetic CIFAR: {folder} is not empty")
    arrays = synthetic_cifar_arrays(num_classes, train_per_class, test_per_class, seed)
    os.makedirs(folder, exist_ok=True)
    names = [f"class_{c}".encode() for c in range(num_classes)]
    for split, files in (("train", train_files), ("test", test_files)):
        data, labels = arrays[split]
        for i, (rows, file) in enumerate(zip(np.array_split(np.arange(len(labels)), len(files)), files)):
            batch = {
                b"batch_label": f"synthetic {split} batch {i + 1} of {len(files)}".encode(),
                b"data": data[rows],
                label_key: labels[rows].tolist(),
                b"filenames": [f"synthetic_{split}_{r:06d}.png".encode() for r in rows],
            }
            if num_classes == 100:
                batch[b"coarse_labels"] = (labels[rows] // 5).tolist()
            _write_pickle(os.path.join(folder, file), batch)
    if num_classes == 10:
        _write_pickle(
            os.path.join(folder, "batches.meta"),
            {b"label_names": names, b"num_cases_per_batch": -(-len(arrays["train"][1]) // 5), b"num_vis": 3072},
        )
    else:
        _write_pickle(
            os.path.join(folder, "meta"),
            {b"fine_label_names": names, b"coarse_label_names": [f"superclass_{c}".encode() for c in range(20)]},
        )
    return {"folder": folder, "train": len(arrays["train"][1]), "test": len(arrays["test"][1])}
