"""A resume never rewinds a run: from a file other than the folder's last.pt it is refused (nothing changes), and
the same file continues in a new folder (a fork) leaving the old run as it was."""

import os

import pytest
import torch
from torch import nn

from ptl_ext.data import build_dataloader
from ptl_ext.errors import RunFolderError
from ptl_ext.train import TrainConfig, Trainer, load_checkpoint
from ptl_ext.train.metrics import read_csv


class Scores:
    primary, higher_is_better = "mAP", True

    def __init__(self, values):
        self.values = list(values)

    def check(self):
        pass

    def __call__(self, model, device="cpu", amp=False, info=None):
        return {"mAP": self.values.pop(0)}


def trainer(out, epochs):
    torch.manual_seed(0)
    images, labels = torch.randn(16, 3, 8, 8), torch.arange(16) % 4
    loader = build_dataloader(torch.utils.data.TensorDataset(images, labels), batch_size=8, shuffle=True, seed=0)
    config = TrainConfig(epochs=epochs, lr=0.05, eval_every=1, out_dir=str(out), progress=False)
    return Trainer(Model(), loader, config, evaluator=Scores([0.9, 0.1, 0.2, 0.3, 0.4]), device="cpu")


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Conv2d(3, 4, 3), nn.Linear(4, 4)

    def forward(self, x, return_features=False):
        features = self.body(x).mean((2, 3))
        if return_features:
            return self.head(features), features
        return self.head(features) if self.training else features


@pytest.fixture
def run3(tmp_path):
    """A three-epoch run whose best epoch is the first (best.pt at epoch 1, last.pt at epoch 3)."""
    out = tmp_path / "run"
    trainer(out, 3).fit()
    assert load_checkpoint(str(out / "best.pt"))["epoch"] == 1
    return out


def snapshot(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


def test_resuming_from_best_pt_into_its_own_folder_is_refused_and_changes_nothing(run3):
    before = snapshot(run3)
    with pytest.raises(RunFolderError, match="would rewind the run .* resume from .*last.pt"):
        trainer(run3, 5).resume(str(run3 / "best.pt"))
    assert snapshot(run3) == before
    assert len(read_csv(str(run3 / "metrics.csv"))) == 3


def test_resuming_from_last_pt_continues(run3):
    t = trainer(run3, 4)
    t.resume(str(run3 / "last.pt"))
    t.fit()
    assert load_checkpoint(str(run3 / "last.pt"))["epoch"] == 4


def test_best_pt_forks_into_a_new_folder_and_the_old_run_stays(run3, tmp_path):
    before = snapshot(run3)
    fork = tmp_path / "fork"
    t = trainer(fork, 3)
    t.resume(str(run3 / "best.pt"))
    t.fit()
    assert snapshot(run3) == before
    assert load_checkpoint(str(fork / "last.pt"))["epoch"] == 3
    assert [int(row["epoch"]) for row in read_csv(str(fork / "metrics.csv"))] == [1, 2, 3]


def test_the_cli_refuses_best_pt_in_one_line(trained, cli, util, market):
    before = snapshot(trained)
    status, err = cli(*util.train_argv(market, trained, "--epochs", "3", "--resume", trained / "best.pt"))
    assert status == 2 and "would rewind" in util.one_line(err)
    assert snapshot(trained) == before
