"""Datasets that cannot be used are one line before training: a tampered CIFAR batch, a set smaller than one
batch, unreadable training images (found by a header check of every file), a checkpoint paired with a dataset
of another task."""

import pickle

import pytest
import torch

from ptl_ext.data import build_dataloader, build_reid_train_loader, load_cifar, make_synthetic_cifar, market1501
from ptl_ext.errors import DataError, ImageDecodeError


@pytest.fixture
def cifar(tmp_path):
    make_synthetic_cifar(tmp_path, 10, train_per_class=2, test_per_class=1)
    return tmp_path


def batch_path(root):
    return root / "cifar-10-batches-py" / "data_batch_1"


def tamper(path, batch):
    path.write_bytes(pickle.dumps(batch, protocol=2))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(p.read_bytes()[:100]),  # truncated
        lambda p: p.write_bytes(b"\x80\x02garbage"),  # not a pickle
        lambda p: tamper(p, {b"data": {"a": 1}, b"labels": [0]}),  # data of the wrong type
        lambda p: tamper(p, {b"data": [[1, 2]], b"labels": ["cat"]}),  # labels of the wrong type
        lambda p: tamper(p, {b"data": [[1.5] * 3072], b"labels": [0]}),  # float pixels
        lambda p: tamper(p, [1, 2, 3]),  # not a dict
        lambda p: tamper(p, {b"data": [[0] * 3072, [0] * 3072], b"labels": [[0], [1]]}),  # 2-D labels
    ],
)
def test_a_tampered_cifar_batch_is_one_data_error_naming_the_file(cifar, damage):
    damage(batch_path(cifar))
    with pytest.raises(DataError, match="load_cifar: .*data_batch_1") as info:
        load_cifar(cifar, 10)
    assert "\n" not in str(info.value)


def test_a_tampered_cifar_batch_from_the_cli_is_one_line(cifar, tmp_path, cli, util):
    batch_path(cifar).write_bytes(b"\x80\x02garbage")
    status, err = cli(
        "train", "--dataset", "cifar10", "--root", cifar, "--arch", "densenet_bc100", "--epochs", "1", "--out",
        tmp_path / "run", "--device", "cpu", "--workers", "0", "--no-progress",
    )  # fmt: skip
    assert status == 2 and "data_batch_1" in util.one_line(err)


def test_a_set_smaller_than_one_batch_is_refused_when_the_loader_is_built(cifar, tmp_path, cli, util):
    data = torch.utils.data.TensorDataset(torch.zeros(5, 3, 4, 4), torch.zeros(5))
    with pytest.raises(DataError, match="5 item.*fewer than one batch of batch_size=8"):
        build_dataloader(data, batch_size=8, drop_last=True)
    assert len(build_dataloader(data, batch_size=8)) == 1  # without drop_last the partial batch is kept
    status, err = cli(
        "train", "--dataset", "cifar10", "--root", cifar, "--arch", "densenet_bc100", "--epochs", "1", "--out",
        tmp_path / "run", "--device", "cpu", "--workers", "0", "--no-progress", "--batch-size", "64",
    )  # fmt: skip
    assert status == 2 and "fewer than one batch of batch_size=64" in util.one_line(err)


def test_unreadable_training_images_are_found_before_training(market, tmp_path):
    import shutil

    root = tmp_path / "market"
    shutil.copytree(market, root)
    victim = sorted((root / "bounding_box_train").iterdir())[-1]
    victim.write_bytes(b"not an image")
    data = market1501(root)
    with pytest.raises(ImageDecodeError, match=f"the training split: 1 file.*{victim.name}"):
        build_reid_train_loader(data, 64, 32, p=2, k=2)


def test_a_reid_checkpoint_evaluated_on_cifar_is_refused(trained, cifar, cli, util):
    status, err = cli("eval", "--checkpoint", trained / "last.pt", "--dataset", "cifar10", "--root", cifar)
    line = util.one_line(err)
    assert status == 2 and "market1501 (reid)" in line and "cannot be evaluated on cifar10" in line


def test_a_cifar_checkpoint_of_another_class_count_is_refused(tmp_path):
    from ptl_ext.data import get_dataset
    from ptl_ext.train.checkpoint import check_dataset_fits

    meta = {"head": "cifar", "num_classes": 10, "dataset": "cifar10"}
    check_dataset_fits(meta, get_dataset("cifar10"))
    with pytest.raises(ValueError, match="10 classes .*cifar100 has 100"):
        check_dataset_fits(meta, get_dataset("cifar100"))
    with pytest.raises(ValueError, match="cannot be evaluated on market1501, a reid dataset"):
        check_dataset_fits(meta, get_dataset("market"))
