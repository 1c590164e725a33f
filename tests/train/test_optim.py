import pytest
import torch
from torch import nn

from ptl_ext.train import TrainConfig, param_groups, sgd_step_optimizer


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)
        self.frozen = nn.Linear(4, 4)
        self.frozen.requires_grad_(False)


def test_param_groups_by_prefix():
    groups = param_groups(Net(), {"head": 0.1}, 0.01)
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [("head", 0.1, 2), ("rest", 0.01, 2)]
    with pytest.raises(ValueError, match="no trainable"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), {}, 0.1)


def test_default_optimizer_and_step_schedule():
    config = TrainConfig(lr=0.01, head_lr=0.1, nesterov=True, step_size=2, gamma=0.1)
    optimizer, scheduler = sgd_step_optimizer(Net(), config)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["nesterov"] and optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["weight_decay"] == 5e-4
    lrs = []
    for _ in range(5):
        lrs += [g["lr"] for g in optimizer.param_groups]
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.1, 0.01, 0.1, 0.01, 0.01, 0.001, 0.01, 0.001, 0.001, 0.0001])


def test_config_validation():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="nesterov"):
        TrainConfig(momentum=0.0, nesterov=True)
    with pytest.raises(ValueError, match="eval_every"):
        TrainConfig(eval_every=-1)


def _lrs_per_epoch(optimizer, scheduler, epochs):
    rates = []
    for _ in range(epochs):
        rates.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return rates


def test_linear_warmup_then_steps():
    # warm-up over 4 epochs from 0.1x, then x0.1 every 6 epochs counted from the start of the run
    config = TrainConfig(lr=0.1, head_lr=1.0, warmup_epochs=4, warmup_factor=0.1, step_size=6, gamma=0.1)
    optimizer, scheduler = sgd_step_optimizer(Net(), config)
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)
    factors = [0.1, 0.325, 0.55, 0.775, 1.0, 1.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01]
    rates = _lrs_per_epoch(optimizer, scheduler, len(factors))
    assert [r[0] for r in rates] == pytest.approx([1.0 * f for f in factors])  # head
    assert [r[1] for r in rates] == pytest.approx([0.1 * f for f in factors])  # the rest


def test_warmup_factor_values():
    from ptl_ext.train.optim import warmup_factor

    assert [warmup_factor(e, 10, 0.1) for e in (0, 5, 9, 10, 50)] == pytest.approx([0.1, 0.55, 0.91, 1.0, 1.0])
    assert warmup_factor(0, 0, 0.1) == 1.0


def test_no_warmup_keeps_step_lr():
    _, scheduler = sgd_step_optimizer(Net(), TrainConfig())
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR


@pytest.mark.parametrize("kind, cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_adam_keeps_head_and_backbone_rates(kind, cls):
    config = TrainConfig(optimizer=kind, lr=3.5e-4, head_lr=3.5e-3, adam_beta1=0.8, adam_beta2=0.99, weight_decay=5e-4)
    optimizer, scheduler = sgd_step_optimizer(Net(), config)
    assert type(optimizer) is cls
    assert [(g["name"], g["lr"], len(g["params"])) for g in optimizer.param_groups] == [
        ("head", 3.5e-3, 2),
        ("rest", 3.5e-4, 2),
    ]
    assert optimizer.defaults["betas"] == (0.8, 0.99) and optimizer.defaults["weight_decay"] == 5e-4
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR


def test_adam_and_adamw_differ_in_weight_decay():
    # one step from zero gradient: Adam's L2 decay goes through the normalised update, AdamW's is lr * wd * w
    torch.manual_seed(0)
    results = {}
    for kind in ("adam", "adamw"):
        layer = nn.Linear(3, 3, bias=False)
        layer.weight.data.fill_(2.0)
        optimizer, _ = sgd_step_optimizer(layer, TrainConfig(optimizer=kind, lr=0.1, weight_decay=0.01))
        layer.weight.grad = torch.zeros_like(layer.weight)
        optimizer.step()
        results[kind] = layer.weight.detach().clone()
    assert torch.allclose(results["adam"], torch.full((3, 3), 2.0 - 0.1), atol=1e-4)  # sign(2 * 0.01) * lr
    assert torch.allclose(results["adamw"], torch.full((3, 3), 2.0 * (1 - 0.1 * 0.01)), atol=1e-6)


def test_strong_options_validation():
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")
    with pytest.raises(ValueError, match="adam_beta2"):
        TrainConfig(adam_beta2=1.0)
    with pytest.raises(ValueError, match="warmup_factor"):
        TrainConfig(warmup_factor=0.0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1)
    defaults = TrainConfig()
    assert (defaults.optimizer, defaults.warmup_epochs) == ("sgd", 0)  # the papers' recipe stays the default


def test_rolling_back_uses_the_configured_optimizer():
    from ptl_ext.train.rolling_back import RollbackSchedule, rollback_optimizer

    class Staged(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
            self.head = nn.Linear(4, 2)

    blocks = [["stages.0"], ["stages.1"]]
    schedule = RollbackSchedule(periods=2, epochs_per_period=2)
    optimizer, _ = rollback_optimizer(Staged(), blocks, schedule, 2, TrainConfig(optimizer="adam", lr=3e-4))
    assert type(optimizer) is torch.optim.Adam
    assert {g["name"]: g["lr"] for g in optimizer.param_groups} == {"B1": 0.001, "B2": 0.01, "head": 0.01}
    optimizer, _ = rollback_optimizer(Staged(), blocks, schedule, 1, TrainConfig())
    assert type(optimizer) is torch.optim.SGD
