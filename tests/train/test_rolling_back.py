import copy

import pytest
import torch

from ptl_ext import models
from ptl_ext.train import Hook, RollbackSchedule, RollingBack, TrainConfig, Trainer, TrainingMethod, rollback
from ptl_ext.train.metrics import plot_curves, read_csv
from ptl_ext.train.rolling_back import check_blocks, default_blocks, head_prefix, pretrained_snapshot

SIZE = (32, 16)


def loader(num_classes=4, n=24, batch=8):
    g = torch.Generator().manual_seed(0)
    images = torch.randn(n, 3, *SIZE, generator=g)
    labels = torch.arange(n) % num_classes
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=batch)


def tiny_stages():
    """A small staged backbone (stem + 2 stages) so that training and checkpoints stay cheap."""

    def stage(i, o, s):
        return torch.nn.Sequential(torch.nn.Conv2d(i, o, 3, s, 1, bias=False), torch.nn.BatchNorm2d(o), torch.nn.ReLU())

    return [stage(3, 8, 2), stage(8, 16, 2), stage(16, 16, 1), stage(16, 32, 2)]


def backbone_net():
    torch.manual_seed(0)
    return models.BackboneNet(tiny_stages(), 4, input_size=SIZE, head_hidden=(16,))


def test_default_blocks_of_each_network():
    resnet = models.resnet34()
    assert default_blocks(resnet) == [["conv1", "bn1"], ["layer1"], ["layer2"], ["layer3"], ["layer4"]]
    assert head_prefix(resnet) == "fc"
    dense = models.densenet_bc100()
    assert default_blocks(dense) == [
        ["features.conv0"],
        ["features.denseblock1", "features.transition1"],
        ["features.denseblock2", "features.transition2"],
        ["features.denseblock3", "features.norm5"],
    ]
    assert head_prefix(dense) == "classifier"
    net = models.BackboneNet(resnet.stages(), 4, input_size=SIZE)
    assert default_blocks(net) == [[f"stages.{i}"] for i in range(5)] and head_prefix(net) == "head"
    for model in (resnet, dense, net):  # every default list is valid: disjoint, known, head-free
        check_blocks(model, default_blocks(model))
    with pytest.raises(TypeError, match="no default blocks"):
        default_blocks(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="no default blocks for MGN"):  # its branches lie outside its stages
        default_blocks(models.MGN(4))


@pytest.mark.parametrize(
    "blocks, message",
    [
        ([], "at least one block"),
        ("layer1", "list of lists"),
        ([["conv1"], []], "B2 must be a non-empty list"),
        ([["conv1"], ["layer9"]], "'layer9' names no parameter"),
        ([["layer1"], ["layer1.0"]], "in both B1 and B2"),
        ([["layer1"], ["fc"]], "holds the head"),
        ([["conv1"], [3]], "B2 must be a non-empty list of module names"),
    ],
)
def test_misspecified_blocks_are_clear_errors(blocks, message):
    with pytest.raises(ValueError, match=message):
        check_blocks(models.resnet34(), blocks)


def test_more_periods_than_blocks_is_an_error():
    with pytest.raises(ValueError, match="periods \\(3\\) must be <= the number of blocks \\(2\\)"):
        RollingBack(models.resnet34(), RollbackSchedule(periods=3), blocks=[["conv1", "bn1"], ["layer1"]])
    with pytest.raises(ValueError, match="epochs_per_period"):
        RollbackSchedule(epochs_per_period=0)


def test_rollback_restores_parameters_and_batchnorm_buffers_of_later_blocks():
    model = models.resnet34()
    blocks = default_blocks(model)
    snapshot = pretrained_snapshot(model, blocks)
    assert "layer1.0.bn1.running_mean" in snapshot and "fc.weight" not in snapshot
    with torch.no_grad():
        for value in model.state_dict().values():
            value.add_(1)
    changed = copy.deepcopy(model.state_dict())
    restored = rollback(model, snapshot, blocks, first=3)
    assert restored and all(n.startswith(("layer2", "layer3", "layer4")) for n in restored)
    for name, value in model.state_dict().items():
        expected = snapshot[name] if name.startswith(("layer2", "layer3", "layer4")) else changed[name]
        assert torch.equal(value, expected), name
    with pytest.raises(ValueError, match="first must be in 1..5"):
        rollback(model, snapshot, blocks, first=6)


class SwitchProbe(Hook):
    """Placed after the RollbackHook: state before each switch and what the switch left."""

    def __init__(self):
        self.before, self.after, self.optimizers = {}, {}, {}

    def on_epoch_start(self, trainer, epoch):
        self.after[epoch] = copy.deepcopy(trainer.module.state_dict())
        self.optimizers[epoch] = (
            trainer.optimizer,
            len(trainer.optimizer.state),
            {g["name"]: g["lr"] for g in trainer.optimizer.param_groups},
        )

    def on_epoch_end(self, trainer, epoch, row):
        self.before[epoch + 1] = copy.deepcopy(trainer.module.state_dict())


def test_period_switches_on_a_ptl_network(tmp_path):
    torch.manual_seed(0)
    model = models.PTLNet(tiny_stages(), 4, input_size=SIZE, head_hidden=(16,))
    pretrained = copy.deepcopy(model.state_dict())
    schedule = RollbackSchedule(periods=3, epochs_per_period=2, lr=0.01, first_head_lr=0.1, kept_lr=0.001)
    hook, probe = RollingBack(model, schedule), SwitchProbe()
    config = TrainConfig(epochs=schedule.total_epochs, out_dir=str(tmp_path), progress=False, save_every=0)
    trainer = Trainer(model, loader(), config, method=hook, hooks=[probe], device="cpu")
    trainer.fit()
    blocks = [f"stages.{i}." for i in range(4)]
    for epoch, period in ((2, 2), (4, 3)):
        before, after = probe.before[epoch], probe.after[epoch]
        for name, value in after.items():
            block = next((i for i, b in enumerate(blocks) if name.startswith(b)), None)
            rolled = block is not None and block + 1 >= period
            assert torch.equal(value, pretrained[name] if rolled else before[name]), name
            if rolled and name.endswith("running_mean"):
                assert not torch.equal(before[name], pretrained[name])  # training had moved it
        optimizer, momentum_entries, lrs = probe.optimizers[epoch]
        assert momentum_entries == 0 and optimizer is not probe.optimizers[epoch - 1][0]
        expected = {f"B{i}": 0.001 if i < period else 0.01 for i in range(1, 5)}
        assert lrs == {**expected, "side": 0.01, "head": 0.01}
    assert probe.optimizers[0][2] == {**{f"B{i}": 0.01 for i in range(1, 5)}, "side": 0.01, "head": 0.1}
    assert probe.optimizers[1][1] > 0  # the same period keeps its optimizer and momentum
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r["period"] for r in rows] == [1, 1, 2, 2, 3, 3]
    assert [r["rollback"] for r in rows] == [None, None, 2, None, 3, None]
    assert [r["lr_head"] for r in rows] == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.01, 0.001])
    assert [r["lr_B1"] for r in rows] == pytest.approx([0.01, 0.001, 0.001, 0.0001, 0.001, 0.0001])
    marked, plain = tmp_path / "marked.png", tmp_path / "plain.png"
    plot_curves(marked, trainer.history)
    plot_curves(plain, [{k: v for k, v in row.items() if k != "rollback"} for row in trainer.history])
    assert marked.read_bytes() != plain.read_bytes()


def make_rollback_trainer(out, epochs_per_period=2):
    model = backbone_net()
    method = RollingBack(model, RollbackSchedule(periods=3, epochs_per_period=epochs_per_period))
    config = TrainConfig(epochs=method.schedule.total_epochs, out_dir=str(out), progress=False)
    return Trainer(
        model, loader(), config, optimizer_factory=method.optimizer_factory, hooks=method.hooks(), device="cpu"
    )


@pytest.mark.parametrize("stop", [2, 3])  # at a period boundary and inside a period (after the decay)
def test_resume_is_exact(tmp_path, stop):
    full = make_rollback_trainer(tmp_path / "full")
    full.fit()
    part = make_rollback_trainer(tmp_path / "part")
    for epoch in range(stop):
        part.run_epoch(epoch)
    resumed = make_rollback_trainer(tmp_path / "part")
    resumed.resume(tmp_path / "part" / "last.pt")
    resumed.fit()
    for name, value in full.module.state_dict().items():
        assert torch.equal(value, resumed.module.state_dict()[name]), name
    assert [g["lr"] for g in full.optimizer.param_groups] == [g["lr"] for g in resumed.optimizer.param_groups]


def test_resume_with_another_schedule_is_refused(tmp_path):
    trainer = make_rollback_trainer(tmp_path)
    trainer.run_epoch(0)
    other = make_rollback_trainer(tmp_path, epochs_per_period=3)
    with pytest.raises(ValueError, match="checkpoint was written with schedule"):
        other.resume(tmp_path / "last.pt")


def test_trainer_misuse_is_reported(tmp_path):
    model = backbone_net()
    method = RollingBack(model, RollbackSchedule(periods=2, epochs_per_period=1))
    trainer = Trainer(
        model,
        loader(),
        TrainConfig(epochs=3, out_dir=str(tmp_path), progress=False),
        optimizer_factory=method.optimizer_factory,
        hooks=[method.hook],
        device="cpu",
    )
    with pytest.raises(ValueError, match="must be periods x epochs_per_period = 2"):
        trainer.fit()
    trainer = Trainer(
        model, loader(), TrainConfig(epochs=2, out_dir=str(tmp_path), progress=False), hooks=[method.hook], device="cpu"
    )
    with pytest.raises(ValueError, match=r"method=RollingBack\(...\)"):
        trainer.fit()


def test_the_hook_is_a_hook_and_the_method_brings_it():
    method = RollingBack(backbone_net(), RollbackSchedule(periods=2, epochs_per_period=1))
    assert isinstance(method.hook, Hook) and not isinstance(method.hook, TrainingMethod)
    assert method.hooks() == [method.hook] and method.epochs() == 2


def run_schedule(tmp_path, schedule, model=None):
    """Train ``schedule`` on a tiny PTL network with a SwitchProbe; returns (pretrained state, probe, rows)."""
    torch.manual_seed(0)
    model = model or models.PTLNet(tiny_stages(), 4, input_size=SIZE, head_hidden=(16,))
    pretrained = copy.deepcopy(model.state_dict())
    probe = SwitchProbe()
    config = TrainConfig(epochs=schedule.total_epochs, out_dir=str(tmp_path), progress=False, save_every=0)
    Trainer(model, loader(), config, method=RollingBack(model, schedule), hooks=[probe], device="cpu").fit()
    return pretrained, probe, read_csv(tmp_path / "metrics.csv")


def test_base_cy_restarts_the_rates_and_rolls_nothing_back(tmp_path):
    schedule = RollbackSchedule(periods=3, epochs_per_period=2, restore=False)
    _, probe, rows = run_schedule(tmp_path, schedule)
    for epoch, period in ((2, 2), (4, 3)):
        for name, value in probe.after[epoch].items():
            assert torch.equal(value, probe.before[epoch][name]), name  # nothing restored
        optimizer, momentum_entries, lrs = probe.optimizers[epoch]
        assert momentum_entries == 0 and optimizer is not probe.optimizers[epoch - 1][0]  # a fresh optimizer
        assert lrs == {**{f"B{i}": 0.001 if i < period else 0.01 for i in range(1, 5)}, "side": 0.01, "head": 0.01}
    assert [r["period"] for r in rows] == [1, 1, 2, 2, 3, 3] and not any(r.get("rollback") for r in rows)


def test_keep_one_block_rolls_every_other_block_back(tmp_path):
    schedule = RollbackSchedule(periods=2, epochs_per_period=1, keep=3)
    pretrained, probe, _ = run_schedule(tmp_path, schedule)
    blocks = [f"stages.{i}." for i in range(4)]
    for name, value in probe.after[1].items():
        block = next((i for i, b in enumerate(blocks) if name.startswith(b)), None)
        if block is None:
            continue
        assert torch.equal(value, probe.before[1][name] if block == 2 else pretrained[name]), name
    assert probe.optimizers[1][2] == {"B1": 0.01, "B2": 0.01, "B3": 0.001, "B4": 0.01, "side": 0.01, "head": 0.01}
    with pytest.raises(ValueError, match="two-period scheme"):
        RollbackSchedule(periods=3, keep=1)
    with pytest.raises(ValueError, match="keep=5 names no block"):
        RollingBack(backbone_net(), RollbackSchedule(periods=2, keep=5))


def test_equal_budget_splits_one_budget_between_the_periods():
    schedule = RollbackSchedule.within(40, 4)
    assert (schedule.periods, schedule.epochs_per_period, schedule.decay_epoch, schedule.total_epochs) == (4, 10, 5, 40)
    assert RollbackSchedule().total_epochs == 160  # the paper: every period its own 40 epochs
    with pytest.raises(ValueError, match="not a multiple"):
        RollbackSchedule.within(42, 4)


def test_default_blocks_come_from_the_network():
    class Described(torch.nn.Module):
        head_name = "out"

        def __init__(self):
            super().__init__()
            self.body, self.out = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

        def rollback_blocks(self):
            return [["body"]]

    model = Described()
    assert default_blocks(model) == [["body"]] and head_prefix(model) == "out"
    ptl = models.PTLNet(tiny_stages(), 4, input_size=SIZE)
    assert default_blocks(ptl) == ptl.rollback_blocks() == [[f"stages.{i}"] for i in range(4)]
    assert head_prefix(ptl) == ptl.head_name == "head"
