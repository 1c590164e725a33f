import os
import pickle

import numpy as np
import pytest
import torch

from ptl_ext.data import TensorImageDataset, build_cifar_transforms, load_cifar


def write_batch(path, n, label_key, num_classes, seed):
    rng = np.random.default_rng(seed)
    batch = {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: rng.integers(0, num_classes, n).tolist(),
        b"batch_label": b"test",
    }
    with open(path, "wb") as fh:
        pickle.dump(batch, fh, protocol=2)
    return batch


def test_cifar10_train_and_test(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [write_batch(folder / f"data_batch_{i}", 4, b"labels", 10, i) for i in range(1, 6)]
    test = write_batch(folder / "test_batch", 3, b"labels", 10, 9)
    images, labels = load_cifar(tmp_path, 10, train=True)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64 and labels.tolist() == sum((b[b"labels"] for b in batches), [])
    # row layout: 1024 red, 1024 green, 1024 blue values, row-major
    assert np.array_equal(images[5, 1].numpy().ravel(), batches[1][b"data"][1, 1024:2048])
    test_images, test_labels = load_cifar(folder, 10, train=False)
    assert test_images.shape == (3, 3, 32, 32) and test_labels.tolist() == test[b"labels"]


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", 6, b"fine_labels", 100, 1)
    images, labels = load_cifar(tmp_path, 100)
    assert images.shape == (6, 3, 32, 32) and labels.max() < 100
    dataset = TensorImageDataset(images, labels, build_cifar_transforms(True))
    image, label = dataset[2]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and label == int(labels[2])


def test_cifar_errors(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        load_cifar(tmp_path, 20)
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        load_cifar(tmp_path, 10)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_batch(folder / "train", 2, b"labels", 100, 1)
    with pytest.raises(RuntimeError, match="fine_labels"):
        load_cifar(tmp_path, 100)
    with open(folder / "test", "wb") as fh:
        pickle.dump({b"data": os.system}, fh)
    with pytest.raises(RuntimeError, match="not allowed"):
        load_cifar(tmp_path, 100, train=False)


def test_tensor_dataset_shape_check():
    with pytest.raises(ValueError, match="TensorImageDataset"):
        TensorImageDataset(torch.zeros(2, 32, 32), torch.zeros(2))
