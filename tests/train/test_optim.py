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
