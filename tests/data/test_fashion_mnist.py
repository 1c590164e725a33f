import gzip
import os
import struct

import numpy as np
import pytest
import torch

from ptl_ext.data import get_dataset, load_dataset
from ptl_ext.data.fashion_mnist import DEFAULT_ROOT, fashion_mnist_protocol, load_fashion_mnist


def _write_idx(path, array, magic):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_root(tmp_path):
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 6), ("t10k", 4)):
        labels = np.repeat(np.arange(10), per_class)
        images = rng.integers(0, 256, (len(labels), 28, 28))
        images[:, 0, 0] = labels  # a marker tying each image to its label
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", images, 2051)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", labels, 2049)
    return tmp_path


def test_reader(fake_root):
    images, labels = load_fashion_mnist(fake_root, train=True)
    assert images.shape == (60, 3, 28, 28) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert torch.equal(images[:, 0, 0, 0].long(), labels) and torch.equal(images[:, 0], images[:, 2])
    test_images, _ = load_dataset("fashionmnist", fake_root, train=False)
    assert test_images.shape == (40, 3, 28, 28)
    assert get_dataset("fashion_mnist").num_classes == 10


def test_reader_errors(fake_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(empty)
    _write_idx(fake_root / "t10k-labels-idx1-ubyte.gz", np.zeros(40), 2051)
    with pytest.raises(RuntimeError, match="magic number 2049"):
        load_fashion_mnist(fake_root, train=False)


def test_protocols(fake_root):
    closed = fashion_mnist_protocol("closed", fake_root, train_per_class=5, query_per_class=1, seed=3)
    assert closed.num_classes == 10 and len(closed.train[1]) == 50
    assert torch.equal(torch.bincount(closed.query[1]), torch.ones(10, dtype=torch.long))
    assert torch.equal(torch.bincount(closed.gallery[1]), torch.full((10,), 3))
    assert len(closed.test[1]) == 40  # query + gallery
    # query and gallery are disjoint images of the test split
    query_ids = {tuple(im[0].flatten()[:40].tolist()) for im in closed.query[0]}
    assert not query_ids & {tuple(im[0].flatten()[:40].tolist()) for im in closed.gallery[0]}
    opened = fashion_mnist_protocol("open", fake_root, query_per_class=2, gallery_per_class=1)
    assert opened.num_classes == 5 and opened.test is None
    assert set(opened.train[1].tolist()) == set(range(5))
    assert set(opened.query[1].tolist()) == set(opened.gallery[1].tolist()) == set(range(5, 10))
    again = fashion_mnist_protocol("closed", fake_root, train_per_class=5, query_per_class=1, seed=3)
    assert torch.equal(again.train[0], closed.train[0])
    with pytest.raises(ValueError, match="protocol"):
        fashion_mnist_protocol("half", fake_root)


def test_validation_never_touches_the_test_split(fake_root):
    split = fashion_mnist_protocol(
        "closed", fake_root, train_per_class=3, query_per_class=1, gallery_per_class=2, evaluate_on="validation"
    )
    train_images, _ = load_fashion_mnist(fake_root, train=True)
    test_images, _ = load_fashion_mnist(fake_root, train=False)

    def keys(images):
        return [bytes(im[0].flatten().tolist()) for im in images]

    pool, test = set(keys(train_images)), set(keys(test_images))
    trained, query, gallery = keys(split.train[0]), keys(split.query[0]), keys(split.gallery[0])
    assert len(trained) == 30 and len(query) == 10 and len(gallery) == 20
    assert set(query + gallery) <= pool and not set(query + gallery) & test
    assert len(set(trained) | set(query) | set(gallery)) == 60  # disjoint: 3 + 1 + 2 of each class's 6
    with pytest.raises(ValueError, match="too few images"):
        fashion_mnist_protocol("closed", fake_root, train_per_class=6, query_per_class=1, evaluate_on="validation")


@pytest.mark.skipif(
    not os.path.isdir(DEFAULT_ROOT), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)
def test_real_files():
    images, labels = load_fashion_mnist(train=False)
    assert images.shape == (10000, 3, 28, 28)
    assert torch.equal(torch.bincount(labels), torch.full((10,), 1000))
