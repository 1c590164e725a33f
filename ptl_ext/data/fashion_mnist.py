"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; Zalando, MIT licence): the reader and the study's protocols.

The 70,000 real 28×28 grey images (60,000 training, 10,000 test, ten clothing classes) come with Debian's
``dataset-fashion-mnist`` package (``apt-get install dataset-fashion-mnist``), which puts the four gzipped IDX
files of the original release in :data:`DEFAULT_ROOT`.

Two protocols (:func:`fashion_mnist_protocol`):

- ``closed``: train on the training split of all ten classes; test on the test split: accuracy over all its
  images, and retrieval with a per-class query slice of the test split against the rest of it as gallery;
- ``open``: train on the training images of classes 0-4; retrieve among the test images of classes 5-9 (how
  well the features serve classes never trained on, i.e. what fine-tuning forgets).
"""

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np
import torch

from .. import _checks

__all__ = ["DEFAULT_ROOT", "INSTALL_HINT", "FashionMNISTProtocol", "load_fashion_mnist", "fashion_mnist_protocol"]

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
INSTALL_HINT = "install it with: apt-get install dataset-fashion-mnist (Debian/Ubuntu, puts it in " + DEFAULT_ROOT + ")"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
PROTOCOLS = ("closed", "open")


def _find(root, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"Fashion-MNIST: {name}(.gz) not found in {root}; {INSTALL_HINT}")


def _read_idx(path, magic, dims):
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise RuntimeError(f"Fashion-MNIST: cannot read {path}: {exc}") from None
    header = 4 + 4 * dims
    if len(data) < header or struct.unpack(">I", data[:4])[0] != magic:
        raise RuntimeError(f"Fashion-MNIST: {path} is not an IDX file with magic number {magic}")
    shape = struct.unpack(">" + "I" * dims, data[4:header])
    if len(data) - header != int(np.prod(shape)):
        raise RuntimeError(f"Fashion-MNIST: {path} holds {len(data) - header} bytes after its header, expected {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(root=None, train=True):
    """The training split (``train=True``, 60,000 images) or the test split (10,000) of Fashion-MNIST.

    ``root``: the folder of the four IDX files (gzipped or not; default :data:`DEFAULT_ROOT`).
    Returns ``(images, labels)``: ``uint8 [N, 3, 28, 28]`` (the grey image repeated over three channels, an
    expanded view sharing one copy) and ``int64 [N]`` in 0..9. Raises ``FileNotFoundError`` saying how to
    install the data, ``RuntimeError`` for a damaged file.
    """
    root = DEFAULT_ROOT if root is None else os.fspath(root)
    image_name, label_name = _FILES[bool(train)]
    images = _read_idx(_find(root, image_name), 2051, 3)
    labels = _read_idx(_find(root, label_name), 2049, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise RuntimeError(f"Fashion-MNIST: {root} holds images {images.shape} and {labels.shape[0]} labels")
    if labels.size and labels.max() > 9:
        raise RuntimeError(f"Fashion-MNIST: labels in {root} fall outside 0..9")
    images = torch.from_numpy(images.copy()).unsqueeze(1).expand(-1, 3, -1, -1)
    return images, torch.from_numpy(labels.astype(np.int64))


@dataclass
class FashionMNISTProtocol:
    """The images of one protocol: ``uint8 [N, 3, 28, 28]`` images with ``int64 [N]`` labels per split.

    ``train``: what the network is trained on (labels 0..num_classes-1); ``test``: the accuracy split (the
    trained classes; ``None`` for the open protocol); ``query`` / ``gallery``: the retrieval splits (disjoint).
    """

    protocol: str
    num_classes: int
    train: tuple
    test: tuple
    query: tuple
    gallery: tuple


def _per_class(labels, classes, count, generator, skip=None):
    """Indices (sorted) of ``count`` random images of each class in ``classes`` (all when ``count`` is None),
    leaving out the indices in ``skip``."""
    chosen = []
    for c in classes:
        index = torch.nonzero(labels == c).flatten()
        if skip is not None:
            index = index[~torch.isin(index, skip)]
        index = index[torch.randperm(len(index), generator=generator)]
        chosen.append(index if count is None else index[:count])
    return torch.cat(chosen).sort().values


def fashion_mnist_protocol(
    protocol="closed",
    root=None,
    *,
    train_per_class=None,
    query_per_class=100,
    gallery_per_class=None,
    evaluate_on="test",
    seed=0,
):
    """The splits of a Fashion-MNIST ``protocol`` (``"closed"`` or ``"open"``, see the module's text).

    Args:
        root: the data folder (default :data:`DEFAULT_ROOT`).
        train_per_class: training images per class (``None``: all 6,000).
        query_per_class: queries per class (100: 1,000 queries closed, 500 open).
        gallery_per_class: gallery images per class from the rest (``None``: all the rest); the closed
            protocol's accuracy split is the query and gallery images together.
        evaluate_on: ``"test"`` draws the queries and the gallery from the test split; ``"validation"`` from
            the training split's images that are not trained on (for tuning: the test split stays unseen;
            the closed protocol then needs ``train_per_class`` below 6,000).
        seed: which images the per-class draws pick (the same seed, the same slice).
    Returns a :class:`FashionMNISTProtocol`.
    """
    _checks.choice(protocol, "protocol", PROTOCOLS)
    _checks.choice(evaluate_on, "evaluate_on", ("test", "validation"))
    for name, value in (("train_per_class", train_per_class), ("gallery_per_class", gallery_per_class)):
        if value is not None:
            _checks.positive_int(value, name)
    query_per_class = _checks.positive_int(query_per_class, "query_per_class")
    generator = torch.Generator().manual_seed(_checks.integer(seed, "seed", minimum=0))
    train_images, train_labels = load_fashion_mnist(root, True)
    trained = list(range(10)) if protocol == "closed" else list(range(5))
    retrieved = trained if protocol == "closed" else list(range(5, 10))
    keep = _per_class(train_labels, trained, train_per_class, generator)
    if evaluate_on == "test":
        pool_images, pool_labels = load_fashion_mnist(root, False)
        used = None
    else:
        pool_images, pool_labels, used = train_images, train_labels, keep
    query = _per_class(pool_labels, retrieved, query_per_class, generator, skip=used)
    if len(query) < query_per_class * len(retrieved):
        raise ValueError(
            f"fashion_mnist_protocol: too few images left for {query_per_class} validation queries per class "
            f"(lower train_per_class, now {train_per_class})"
        )
    seen = query if used is None else torch.cat([used, query])
    gallery = _per_class(pool_labels, retrieved, gallery_per_class, generator, skip=seen)
    test = None
    if protocol == "closed":
        both = torch.cat([query, gallery]).sort().values
        test = (pool_images[both], pool_labels[both])
    return FashionMNISTProtocol(
        protocol,
        len(trained),
        (train_images[keep], train_labels[keep]),
        test,
        (pool_images[query], pool_labels[query]),
        (pool_images[gallery], pool_labels[gallery]),
    )
