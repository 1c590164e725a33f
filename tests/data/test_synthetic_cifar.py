"""Synthetic CIFAR: the release layout read back by load_cifar, determinism, separable classes, errors."""

import pickle

import numpy as np
import pytest

from ptl_ext.data import load_cifar
from ptl_ext.data.synthetic_cifar import make_synthetic_cifar, synthetic_cifar_arrays


def test_cifar10_layout_and_reader(tmp_path):
    info = make_synthetic_cifar(tmp_path, 10, train_per_class=7, test_per_class=3, seed=1)
    folder = tmp_path / "cifar-10-batches-py"
    assert info == {"folder": str(folder), "train": 70, "test": 30}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    )
    with open(folder / "data_batch_2", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    assert set(batch) == {b"batch_label", b"data", b"labels", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (14, 3072)
    with open(folder / "batches.meta", "rb") as fh:
        assert len(pickle.load(fh, encoding="bytes")[b"label_names"]) == 10
    images, labels = load_cifar(tmp_path, 10, train=True)
    arrays = synthetic_cifar_arrays(10, 7, 3, seed=1)
    assert images.shape == (70, 3, 32, 32)
    assert np.array_equal(images.numpy().reshape(70, -1), arrays["train"][0])
    assert np.array_equal(labels.numpy(), arrays["train"][1])
    assert np.bincount(labels.numpy()).tolist() == [7] * 10
    test_images, test_labels = load_cifar(tmp_path, 10, train=False)
    assert test_images.shape == (30, 3, 32, 32) and np.bincount(test_labels.numpy()).tolist() == [3] * 10
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic_cifar(tmp_path, 10, 7, 3)


def test_cifar100_layout(tmp_path):
    make_synthetic_cifar(tmp_path, 100, train_per_class=2, test_per_class=1, seed=0)
    folder = tmp_path / "cifar-100-python"
    with open(folder / "train", "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    assert batch[b"coarse_labels"] == [f // 5 for f in batch[b"fine_labels"]]
    images, labels = load_cifar(tmp_path, 100, train=False)
    assert images.shape == (100, 3, 32, 32) and sorted(labels.tolist()) == list(range(100))


def test_deterministic_under_seed():
    a, b, c = (synthetic_cifar_arrays(10, 4, 2, seed=s) for s in (3, 3, 4))
    for split in ("train", "test"):
        assert all(np.array_equal(x, y) for x, y in zip(a[split], b[split]))
    assert not np.array_equal(a["train"][0], c["train"][0])


@pytest.mark.parametrize("classes", [10, 100])
def test_classes_are_separable_but_images_differ(classes):
    arrays = synthetic_cifar_arrays(classes, 20, 5, seed=2)
    (train, train_labels), (test, test_labels) = arrays["train"], arrays["test"]
    means = np.stack([train[train_labels == c].astype(np.float64).mean(0) for c in range(classes)])
    distances = ((test[:, None, :].astype(np.float64) - means[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == test_labels).mean()
    assert accuracy > 0.8  # a nearest-class-mean classifier; chance is 1 / classes
    assert len(np.unique(train, axis=0)) == len(train)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="10 or 100"):
        make_synthetic_cifar(tmp_path, 20)
    with pytest.raises(ValueError, match="train_per_class"):
        synthetic_cifar_arrays(10, 0)
    with pytest.raises(ValueError, match="max_shift"):
        synthetic_cifar_arrays(10, 2, max_shift=20)
