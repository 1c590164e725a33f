"""CIFAR-10/100 reader for the python-pickle release (``cifar-10-batches-py``, ``cifar-100-python``).

The pickles are read with an unpickler that only builds numpy arrays, so a tampered file
cannot run code; any damage is one :class:`~ptl_ext.errors.DataError` line naming the file.
"""

import os
import pickle

import numpy as np
import torch

from ..errors import DataError

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}

_LAYOUTS = {
    10: ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"),
    100: ("cifar-100-python", ["train"], ["test"], b"fine_labels"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"CIFAR batch refers to {module}.{name}, which is not allowed")


def _load_batch(path, label_key):
    """``(data uint8 [N, 3072], labels int64 [N])`` of one batch file; :class:`DataError` for anything else."""
    try:
        with open(path, "rb") as fh:
            batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
        if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
            raise DataError(f"load_cifar: {path} lacks the keys b'data' and {label_key!r}")
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
        if data.dtype != np.uint8 or labels.dtype.kind not in "iu":
            raise DataError(
                f"load_cifar: {path} holds {data.dtype} data and {labels.dtype} labels; expected uint8 and int"
            )
        labels = labels.astype(np.int64)
    except DataError:
        raise
    except Exception as exc:  # a tampered pickle fails in many ways (types, recursion, memory): all one answer
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(f"load_cifar: {path} is not a readable CIFAR pickle batch: {reason}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.ndim != 1 or data.shape[0] != labels.shape[0]:
        raise DataError(
            f"load_cifar: {path} has data {data.shape} and labels {labels.shape}; expected [N, 3072] and [N]"
        )
    return data, labels


def load_cifar(root, num_classes=10, train=True):
    """Read CIFAR-``num_classes`` from ``root`` (the batches folder or its parent).

    Returns:
        ``(images, labels)``: ``uint8 [N, 3, 32, 32]`` and ``int64 [N]`` tensors.
    """
    if num_classes not in _LAYOUTS:
        raise ValueError(f"load_cifar: num_classes must be 10 or 100, got {num_classes}")
    folder_name, train_files, test_files, label_key = _LAYOUTS[num_classes]
    files = train_files if train else test_files
    root = os.fspath(root)
    folder = root if os.path.isfile(os.path.join(root, files[0])) else os.path.join(root, folder_name)
    missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise FileNotFoundError(
            f"load_cifar: CIFAR-{num_classes} batches {', '.join(missing)} not found in {root} "
            f"or {os.path.join(root, folder_name)}"
        )
    parts = [_load_batch(os.path.join(folder, f), label_key) for f in files]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"load_cifar: labels in {folder} fall outside 0..{num_classes - 1}")
    images = torch.from_numpy(data).view(-1, 3, 32, 32)
    return images, torch.from_numpy(labels)
