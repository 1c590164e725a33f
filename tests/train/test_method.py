"""A training method plugs into the Trainer as one object (method=): rolling back, STD, both together."""

import pytest
import torch

from ptl_ext import models
from ptl_ext.errors import MethodMismatchError, ResumeMismatchError
from ptl_ext.train import (
    STD,
    CombinedMethod,
    ReIDLoss,
    RollbackSchedule,
    RollingBack,
    STDLoss,
    TrainConfig,
    Trainer,
    TrainingMethod,
)

SIZE = (16, 8)


def loader():
    g = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 3, *SIZE, generator=g), torch.arange(16) % 4
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)


def net():
    torch.manual_seed(0)
    stages = [
        torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, 2, 1), torch.nn.BatchNorm2d(o), torch.nn.ReLU())
        for i, o in ((3, 8), (8, 8), (8, 16))
    ]
    return models.BackboneNet(stages, 4, input_size=SIZE, head_hidden=(8,))


def teacher(images):
    return torch.zeros(images.shape[0], 16)


def test_rolling_back_is_one_argument(tmp_path):
    model = net()
    hook = RollingBack(model, RollbackSchedule(periods=2, epochs_per_period=1))
    trainer = Trainer(
        model, loader(), TrainConfig(epochs=50, out_dir=str(tmp_path), progress=False), method=hook, device="cpu"
    )
    assert trainer.config.epochs == 2 and trainer.hooks == [hook.hook]  # the method's epochs replace the config's
    assert [g["name"] for g in trainer.optimizer.param_groups] == ["B1", "B2", "B3", "head"]
    history = trainer.fit()
    assert [row["period"] for row in history] == [1, 2] and history[1]["rollback"] == 2
    with pytest.raises(ValueError, match="brings its optimizer factory"):
        Trainer(
            model,
            loader(),
            TrainConfig(out_dir=str(tmp_path / "x")),
            method=hook,
            optimizer_factory=hook.optimizer_factory,
        )
    with pytest.raises(TypeError, match="method must be a TrainingMethod"):
        Trainer(model, loader(), TrainConfig(out_dir=str(tmp_path / "x")), method=object())


def test_std_is_one_argument_around_the_runs_loss(tmp_path):
    base = ReIDLoss(0.1)
    trainer = Trainer(
        net(),
        loader(),
        TrainConfig(epochs=1, out_dir=str(tmp_path), progress=False),
        loss_fn=base,
        method=STD(teacher, lam=0.5),
        device="cpu",
    )
    assert isinstance(trainer.loss_fn, STDLoss) and trainer.loss_fn.base is base and trainer.loss_fn.lam == 0.5
    assert trainer.fit()[0]["l1"] > 0
    with pytest.raises(ValueError, match="lam must be a number in \\[0, 1\\]"):
        STD(teacher, lam=2)
    with pytest.raises(TypeError, match="teacher must be callable"):
        STD(None)


def test_methods_combine_and_their_settings_are_checked_on_resume(tmp_path):
    model = net()
    both = [STD(teacher, lam=0.5), RollingBack(model, RollbackSchedule(periods=2, epochs_per_period=1))]
    trainer = Trainer(model, loader(), TrainConfig(out_dir=str(tmp_path), progress=False), method=both, device="cpu")
    assert trainer.method.name == "std+rolling_back" and trainer.config.epochs == 2
    assert isinstance(trainer.loss_fn, STDLoss) and len(trainer.hooks) == 1
    trainer.run_epoch(0)
    model = net()
    other = [STD(teacher, lam=0.8), RollingBack(model, RollbackSchedule(periods=2, epochs_per_period=1))]
    expected = "std\\+rolling_back.std: saved \\{'lam': 0.5\\}, given \\{'lam': 0.8\\}"
    with pytest.raises(ResumeMismatchError, match=expected):
        Trainer(model, loader(), TrainConfig(out_dir=str(tmp_path), progress=False), method=other, device="cpu").resume(
            tmp_path / "last.pt"
        )
    with pytest.raises(ValueError, match="both set the optimizer factory"):
        CombinedMethod([both[1], RollingBack(net(), RollbackSchedule(periods=2, epochs_per_period=1))])
    assert TrainingMethod().name == "plain"


def test_a_rolling_back_run_resumed_without_it_names_the_method(tmp_path):
    model = net()
    hook = RollingBack(model, RollbackSchedule(periods=2, epochs_per_period=1))
    Trainer(model, loader(), TrainConfig(out_dir=str(tmp_path), progress=False), method=hook, device="cpu").run_epoch(0)
    plain = Trainer(net(), loader(), TrainConfig(epochs=2, out_dir=str(tmp_path), progress=False), device="cpu")
    before = {k: v.clone() for k, v in plain.module.state_dict().items()}
    with pytest.raises(
        MethodMismatchError, match="was trained with rolling back, this run has no training method"
    ) as info:
        plain.resume(tmp_path / "last.pt")
    assert (info.value.saved, info.value.given) == ("rolling_back", "plain")
    assert all(torch.equal(v, before[k]) for k, v in plain.module.state_dict().items())
