"""The TensorBoard hook: scalars of every epoch read back from the event file; a clear missing-package error."""

import os
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ptl_ext.data import build_dataloader
from ptl_ext.train import ReIDLoss, TrainConfig, Trainer
from ptl_ext.train.tensorboard import TENSORBOARD_MISSING, TensorBoardHook, scalar_tag


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x, return_features=False):
        features = self.body(x).mean((2, 3))
        return (self.head(features), features) if return_features else self.head(features)


class FakeReIDEvaluator:
    """ReID-style metrics that change by epoch, so each step's value can be checked."""

    primary, higher_is_better = "mAP", True

    def __init__(self):
        self.calls = 0

    def __call__(self, model, device, amp, info):
        self.calls += 1
        return {"mAP": 0.1 * self.calls, "rank1": 0.2 * self.calls, "mINP": 0.05 * self.calls, "num_valid": 3.0}


def test_scalars_of_every_epoch_are_written_to_the_run_folder(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    torch.manual_seed(0)
    data = TensorDataset(torch.randn(12, 3, 8, 8), torch.tensor([0, 0, 1, 1, 2, 2] * 2))
    loader = build_dataloader(data, batch_size=6, shuffle=True)
    config = TrainConfig(epochs=3, lr=0.01, step_size=2, gamma=0.5, eval_every=1, out_dir=str(tmp_path), progress=False)
    trainer = Trainer(
        Net(),
        loader,
        config,
        evaluator=FakeReIDEvaluator(),
        loss_fn=ReIDLoss(0.1, 1.0),
        hooks=[TensorBoardHook()],
        device="cpu",
    )
    history = trainer.fit()
    folder = tmp_path / "tensorboard"
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(folder))
    assert (tmp_path / "metrics.csv").is_file()  # the CSV stays
    events = EventAccumulator(str(folder))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/loss", "loss/ce", "loss/triplet", "lr/all", "eval/mAP", "eval/CMC-1", "eval/mINP"} <= tags
    assert "eval/num_valid" not in tags and "loss/epoch" not in tags
    for key in ("mAP", "rank1", "loss", "lr"):
        scalars = events.Scalars(scalar_tag(key))
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([row[key] for row in history])
    assert [s.value for s in events.Scalars("lr/all")] == pytest.approx([0.01, 0.01, 0.005])


def test_tags():
    assert scalar_tag("top1_error") == "eval/top1_error" and scalar_tag("rank5") == "eval/CMC-5"
    assert scalar_tag("lr_head") == "lr/head" and scalar_tag("std") == "loss/std"
    assert scalar_tag("train_acc") == "train/train_acc"


def test_missing_tensorboard_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install tensorboard") as info:
        TensorBoardHook()
    assert str(info.value) == TENSORBOARD_MISSING
