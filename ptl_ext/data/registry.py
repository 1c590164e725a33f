"""The dataset registry: every dataset the package reads, by name, with its task, reader and aliases.

Looking a dataset up imports nothing heavy: a reader module (and torch) is imported when the dataset is
read. Every lookup resolves aliases, so an alias can stand wherever a dataset is named.
"""

from dataclasses import dataclass, field

from .config import CIFAR_INPUT_SIZE

__all__ = [
    "DatasetInfo",
    "DATASETS",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "REID_DATASETS",
    "load_reid_dataset",
]

TASKS = ("reid", "classification")


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset of the registry.

    ``name``: the registered name; ``task``: ``"reid"`` or ``"classification"``; ``title``: its usual name;
    ``reader``: ``reader(root, **options)`` reading it (see :func:`load_dataset`); ``aliases``: other names
    that stand for it; ``num_classes``: the class count of a classification set (``None`` for ReID, whose
    identities are counted when read); ``image_size``: ``(H, W)`` of a set whose images all have one size
    (CIFAR: 32×32), else ``None``.
    """

    name: str
    task: str
    title: str
    reader: object = field(repr=False, compare=False)
    aliases: tuple = ()
    num_classes: int = None
    image_size: tuple = None


def _reid_reader(function, **options):
    """``read(root) -> ReIDData`` calling :mod:`ptl_ext.data.reid_datasets`'s ``function`` on first use."""

    def read(root):
        """The :class:`~ptl_ext.data.ReIDData` of the dataset at ``root``."""
        from . import reid_datasets

        return getattr(reid_datasets, function)(root, **options)

    return read


def _cifar_reader(num_classes):
    """``read(root, train=True) -> (images uint8 [N, 3, 32, 32], labels int64 [N])`` of CIFAR-``num_classes``."""

    def read(root, train=True):
        """The training split (``train=True``) or the test split of the CIFAR set at ``root``."""
        from .cifar import load_cifar

        return load_cifar(root, num_classes, train)

    return read


def _fashion_mnist_reader(root=None, train=True):
    """``(images uint8 [N, 3, 28, 28], labels int64 [N])`` of Fashion-MNIST's training or test split."""
    from .fashion_mnist import load_fashion_mnist

    return load_fashion_mnist(root, train)


DATASETS = {
    info.name: info
    for info in (
        DatasetInfo("market1501", "reid", "Market-1501", _reid_reader("market1501"), ("market",)),
        DatasetInfo("dukemtmc_reid", "reid", "DukeMTMC-reID", _reid_reader("dukemtmc_reid"), ("duke",)),
        DatasetInfo(
            "cuhk03_labeled",
            "reid",
            "CUHK03-NP labeled",
            _reid_reader("cuhk03_np", variant="labeled"),
            ("cuhk03_np_labeled",),
        ),
        DatasetInfo(
            "cuhk03_detected",
            "reid",
            "CUHK03-NP detected",
            _reid_reader("cuhk03_np", variant="detected"),
            ("cuhk03_np_detected",),
        ),
        DatasetInfo("msmt17", "reid", "MSMT17", _reid_reader("msmt17"), ("msmt",)),
        DatasetInfo("market_duke", "reid", "Market-1501 + DukeMTMC-reID", _reid_reader("market_duke")),
        DatasetInfo(
            "cifar10", "classification", "CIFAR-10", _cifar_reader(10), num_classes=10, image_size=CIFAR_INPUT_SIZE
        ),
        DatasetInfo(
            "cifar100", "classification", "CIFAR-100", _cifar_reader(100), num_classes=100, image_size=CIFAR_INPUT_SIZE
        ),
        DatasetInfo(
            "fashion_mnist",
            "classification",
            "Fashion-MNIST",
            _fashion_mnist_reader,
            ("fashionmnist",),
            num_classes=10,
            image_size=(28, 28),
        ),
    )
}
_ALIASES = {alias: info.name for info in DATASETS.values() for alias in info.aliases}


def list_datasets(task=None, *, aliases=False):
    """Sorted names of the registered datasets (of ``task`` only when given); ``aliases=True`` adds the
    aliases."""
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))} or None, got {task!r}")
    infos = [info for info in DATASETS.values() if task is None or info.task == task]
    return sorted([info.name for info in infos] + [alias for info in infos if aliases for alias in info.aliases])


def get_dataset(name):
    """The :class:`DatasetInfo` of ``name`` or of the alias ``name`` (``duke`` -> ``dukemtmc_reid``).

    Raises ``ValueError`` listing the names and aliases for an unknown ``name``.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset must be a name (str), got {type(name).__name__}")
    info = DATASETS.get(_ALIASES.get(name, name))
    if info is None:
        raise ValueError(
            f"dataset must be one of {', '.join(list_datasets())} (aliases: "
            f"{', '.join(f'{a}={n}' for a, n in sorted(_ALIASES.items()))}), got {name!r}"
        )
    return info


def load_dataset(name, root, **options):
    """Read dataset ``name`` (or an alias) from the folder ``root`` (the dataset's folder or its parent).

    ReID datasets return a :class:`~ptl_ext.data.ReIDData`; classification datasets return
    ``(images uint8 [N, 3, H, W], labels int64 [N])`` (CIFAR 32×32, Fashion-MNIST 28×28) of the training
    split, or of the test split with ``train=False``.
    """
    return get_dataset(name).reader(root, **options)


REID_DATASETS = {name: info.reader for name, info in DATASETS.items() if info.task == "reid"}  # name -> reader


def load_reid_dataset(name, root):
    """Read the ReID dataset ``name`` (or an alias) from ``root``: a :class:`~ptl_ext.data.ReIDData`."""
    info = get_dataset(name)
    if info.task != "reid":
        raise ValueError(
            f"dataset {name!r} is a {info.task} dataset, not a ReID one; expected one of "
            f"{', '.join(list_datasets('reid', aliases=True))}"
        )
    return info.reader(root)
