import os

import pytest
import torch
from torch import nn

from ptl_ext.data import build_dataloader, build_reid_loaders, make_synthetic_market, market1501
from ptl_ext.nn import BConvCell
from ptl_ext.train import (
    CheckpointError,
    ClassificationEvaluator,
    Hook,
    ReIDLoss,
    TrainConfig,
    Trainer,
    load_checkpoint,
)
from ptl_ext.train.metrics import read_csv


class TinyNet(nn.Module):
    """The network contract: logits in training, features in eval, both with return_features=True."""

    def __init__(self, num_classes):
        super().__init__()
        self.cell = BConvCell(3, 8, 3, stride=2)
        self.body = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, num_classes))

    def forward(self, x, return_features=False):
        features = self.body(self.cell(x)).mean((2, 3))
        if return_features:
            return self.head(features), features
        return self.head(features) if self.training else features


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_market(
        root, num_train_ids=6, num_test_ids=3, num_cams=3, images_per_cam=4, height=32, width=16, seed=4
    )
    return market1501(root)


class Pairs(torch.utils.data.Dataset):
    """(image, pid, camid) items as (image, pid) for the classification evaluator."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        image, pid, _ = self.dataset[i]
        return image, pid


def make_trainer(data, out_dir, epochs, hooks=(), **config):
    torch.manual_seed(0)
    train_loader, _, _ = build_reid_loaders(data, 32, 16, p=3, k=4, seed=1, erasing_p=0.0, padding=2)
    evaluator = ClassificationEvaluator(build_dataloader(Pairs(train_loader.dataset), batch_size=32))
    settings = dict(epochs=epochs, lr=0.05, step_size=5, eval_every=1, out_dir=str(out_dir), progress=False)
    settings.update(config)
    return Trainer(
        TinyNet(data.num_train_pids),
        train_loader,
        TrainConfig(**settings),
        evaluator=evaluator,
        loss_fn=ReIDLoss(0.1, triplet_weight=1.0),
        hooks=hooks,
        device="cpu",
    )


class StateProbe(Hook):
    """Records whether the cell's latent state is clear at each epoch start and set at each end."""

    def __init__(self):
        self.at_start, self.at_end = [], []

    def on_epoch_start(self, trainer, epoch):
        self.at_start.append(trainer.module.cell.states is None)

    def on_epoch_end(self, trainer, epoch, row):
        self.at_end.append(trainer.module.cell.states is not None)


def test_two_epochs_learn_reset_states_and_write_files(dataset, tmp_path):
    probe = StateProbe()
    trainer = make_trainer(dataset, tmp_path, epochs=2, hooks=[probe])
    history = trainer.fit()
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[1]["loss"] < history[0]["loss"]
    assert {"ce", "triplet", "train_acc", "top1_error", "lr", "time_s"} <= set(history[1])
    # latent states: set during each epoch, cleared at the start of every epoch
    assert probe.at_start == [True, True] and probe.at_end == [True, True]
    assert [row["states_reset"] for row in history] == [1, 1]
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["loss"] for r in rows] == pytest.approx([row["loss"] for row in history])
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert {"last.pt", "best.pt", "metrics.csv", "curves.png"} <= set(os.listdir(tmp_path))
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]


def test_curves_are_redrawn_with_each_checkpoint_not_every_epoch(dataset, tmp_path, monkeypatch):
    from ptl_ext.train import metrics

    drawn = []
    monkeypatch.setattr(metrics, "plot_curves", lambda path, history, *a: drawn.append(len(history)))
    make_trainer(dataset, tmp_path / "quiet", epochs=4, eval_every=2, save_every=0).fit()
    assert drawn == [2, 4]  # the evaluations (epoch 4 is also the last)
    drawn.clear()
    make_trainer(dataset, tmp_path / "busy", epochs=3, eval_every=0, save_every=1).fit()
    assert drawn == [1, 2, 3]


def test_final_checkpoints_write_only_the_last_epoch(dataset, tmp_path, monkeypatch):
    from ptl_ext.train import trainer_files as trainer_module  # where the Trainer writes its checkpoints

    saved = []
    real_save = trainer_module.save_checkpoint
    monkeypatch.setattr(
        trainer_module,
        "save_checkpoint",
        lambda path, state, *copies: (saved.append(state["epoch"]), real_save(path, state, *copies)),
    )
    history = make_trainer(dataset, tmp_path, epochs=3, eval_every=1, checkpoints="final").fit()
    assert saved == [3] and sorted(os.listdir(tmp_path)) == ["curves.png", "last.pt", "metrics.csv"]
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["epoch"] == 3 and not state["pending_eval"]
    assert [row["top1_error"] for row in state["history"]] == [row["top1_error"] for row in history]
    saved.clear()
    make_trainer(dataset, tmp_path / "all", epochs=3, eval_every=1, save_every=0).fit()
    assert len(saved) >= 6  # before and after each evaluation
    with pytest.raises(ValueError, match="TrainConfig.checkpoints must be one of"):
        TrainConfig(checkpoints="best")


def test_resume_gives_the_same_next_epoch(dataset, tmp_path):
    full = make_trainer(dataset, tmp_path / "full", epochs=2).fit()
    make_trainer(dataset, tmp_path / "part", epochs=1).fit()
    resumed = make_trainer(dataset, tmp_path / "part", epochs=2)
    resumed.resume(tmp_path / "part" / "last.pt")
    assert resumed.epoch == 1 and len(resumed.history) == 1
    history = resumed.fit()
    assert history[1]["loss"] == full[1]["loss"]
    assert history[1]["top1_error"] == full[1]["top1_error"]
    assert [r["epoch"] for r in read_csv(tmp_path / "part" / "metrics.csv")] == [1, 2]


def test_corrupted_checkpoint_is_refused_and_nothing_is_overwritten(dataset, tmp_path):
    make_trainer(dataset, tmp_path, epochs=1).fit()
    last = tmp_path / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 3] ^= 0xFF
    last.write_bytes(bytes(data))
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    trainer = make_trainer(dataset, tmp_path, epochs=2)
    with pytest.raises(CheckpointError, match="corrupted"):
        trainer.resume(last)
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before


def test_resume_into_another_model_is_refused(dataset, tmp_path):
    make_trainer(dataset, tmp_path, epochs=1).fit()
    trainer = make_trainer(dataset, tmp_path / "other", epochs=2)
    trainer.module.head[1] = nn.Linear(16, 99)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        trainer.resume(tmp_path / "last.pt")


def test_amp_and_per_group_learning_rates(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path, epochs=1, amp=True, head_lr=0.2, eval_every=0)
    row = trainer.run_epoch(0)
    assert torch.isfinite(torch.tensor(row["loss"]))
    assert row["lr_head"] == 0.2 and row["lr_rest"] == 0.05


def test_hooks_can_swap_the_optimizer(dataset, tmp_path):
    class Swap(Hook):
        def on_epoch_start(self, trainer, epoch):
            if epoch == 1:
                optimizer = torch.optim.SGD(trainer.module.parameters(), lr=0.001)
                trainer.set_optimizer(optimizer, torch.optim.lr_scheduler.StepLR(optimizer, 10))

    history = make_trainer(dataset, tmp_path, epochs=2, hooks=[Swap()]).fit()
    assert history[0]["lr"] == 0.05 and history[1]["lr"] == 0.001
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        make_trainer(dataset, tmp_path, epochs=1).set_optimizer(object(), None)


def test_save_every_zero_writes_last_only_at_the_end(dataset, tmp_path):
    trainer = make_trainer(dataset, tmp_path, epochs=2, save_every=0, eval_every=0)
    trainer.run_epoch(0)
    assert not (tmp_path / "last.pt").exists() and (tmp_path / "metrics.csv").exists()
    trainer.run_epoch(1)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
