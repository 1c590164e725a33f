"""The dataset registry: names, aliases, tasks, readers and the errors naming what is known."""

import os

import pytest

from ptl_ext.data import (
    REID_DATASETS,
    DatasetInfo,
    get_dataset,
    list_datasets,
    load_dataset,
    load_reid_dataset,
    make_synthetic_cifar,
)

REID = ["cuhk03_detected", "cuhk03_labeled", "dukemtmc_reid", "market1501", "market_duke", "msmt17"]
ALIASES = {
    "market": "market1501",
    "duke": "dukemtmc_reid",
    "msmt": "msmt17",
    "cuhk03_np_labeled": "cuhk03_labeled",
    "cuhk03_np_detected": "cuhk03_detected",
    "fashionmnist": "fashion_mnist",
}
CLASSIFICATION = ["cifar10", "cifar100", "fashion_mnist"]


def write_market(root, train_pids=(2, 7, 11)):
    """An (empty-file) Market layout: the readers only parse the names."""
    layout = {
        "bounding_box_train": [f"{pid:04d}_c{1 + pid % 6}s1_000001_01.jpg" for pid in train_pids],
        "query": ["0003_c1s1_000101_00.jpg"],
        "bounding_box_test": ["0003_c2s1_000201_01.jpg"],
    }
    for split, names in layout.items():
        os.makedirs(root / split, exist_ok=True)
        for name in names:
            (root / split / name).touch()


def test_names_tasks_and_aliases():
    assert list_datasets() == sorted(REID + CLASSIFICATION)
    assert list_datasets("reid") == REID and list_datasets("classification") == CLASSIFICATION
    assert list_datasets(aliases=True) == sorted(REID + CLASSIFICATION + list(ALIASES))
    for alias, name in ALIASES.items():
        assert get_dataset(alias) is get_dataset(name) and get_dataset(name).name == name
        assert alias in get_dataset(name).aliases
    assert sorted(REID_DATASETS) == REID


def test_cifar_entries_know_their_classes_and_image_size():
    for name, classes in (("cifar10", 10), ("cifar100", 100)):
        info = get_dataset(name)
        assert isinstance(info, DatasetInfo)
        assert (info.task, info.num_classes, info.image_size) == ("classification", classes, (32, 32))
    info = get_dataset("fashion_mnist")
    assert (info.task, info.num_classes, info.image_size) == ("classification", 10, (28, 28))
    assert all(get_dataset(name).num_classes is None and get_dataset(name).image_size is None for name in REID)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"dataset must be one of cifar10, .*msmt17 \(aliases: .*duke=dukemtmc_reid"
        r".*\), got 'viper'",
    ):
        get_dataset("viper")
    with pytest.raises(TypeError, match="dataset must be a name"):
        get_dataset(3)
    with pytest.raises(ValueError, match="task must be one of 'reid', 'classification'"):
        list_datasets("detection")


def test_readers_read_through_names_and_aliases(tmp_path):
    write_market(tmp_path / "Market-1501-v15.09.15")
    data = load_dataset("market", tmp_path)
    assert data.name == "market1501" and data.num_train_pids == 3
    assert load_reid_dataset("market", tmp_path).train == load_reid_dataset("market1501", tmp_path).train == data.train
    make_synthetic_cifar(tmp_path, 10, train_per_class=2, test_per_class=1)
    images, labels = load_dataset("cifar10", tmp_path, train=False)
    assert images.shape == (10, 3, 32, 32) and sorted(labels.tolist()) == list(range(10))
    assert load_dataset("cifar10", tmp_path)[0].shape == (20, 3, 32, 32)
    with pytest.raises(ValueError, match="'cifar10' is a classification dataset, not a ReID one"):
        load_reid_dataset("cifar10", tmp_path)
    with pytest.raises(FileNotFoundError, match="dukemtmc_reid"):
        load_dataset("duke", tmp_path)
