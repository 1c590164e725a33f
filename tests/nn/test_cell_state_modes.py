"""Ablation options of the cells (beyond the papers): state modes and an eval state accumulated in training."""

import copy

import pytest
import torch
from torch import nn

from ptl_ext.nn import BConvCell, BConvCellV2, accumulate_eval_states, set_state_mode

CELLS = [BConvCell, BConvCellV2]


def batches(n, shape=(2, 3, 6, 6), seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for _ in range(n)]


@pytest.mark.parametrize("cls", CELLS)
def test_default_is_carry_and_reset_mode_starts_every_batch_from_zeros(cls):
    torch.manual_seed(0)
    carry = cls(3, 4)
    assert carry.state_mode == "carry"
    reset = copy.deepcopy(carry)
    set_state_mode(reset, "reset")
    x, y = batches(2)
    first = reset(x)
    assert reset.states is not None  # kept for inspection
    assert torch.equal(reset(x), first)  # the stored state is not used by the next batch
    assert torch.equal(carry(x), first) and not torch.equal(carry(x), first)  # the papers: carried
    reset(y)


@pytest.mark.parametrize("cls", CELLS)
def test_zero_mode_is_reset_mode_in_training_with_the_same_parameters(cls):
    torch.manual_seed(0)
    zero = cls(3, 4)
    reset = copy.deepcopy(zero)
    set_state_mode(zero, "zero")
    set_state_mode(reset, "reset")
    assert set(dict(zero.named_parameters())) == set(dict(reset.named_parameters()))
    for x in batches(3):
        out_zero, out_reset = zero(x), reset(x)
        assert torch.equal(out_zero, out_reset)
        out_zero.square().sum().backward()
        out_reset.square().sum().backward()
    assert zero.states is None
    for a, b in zip(zero.parameters(), reset.parameters()):
        assert torch.equal(a.grad, b.grad)
    with pytest.raises(ValueError, match="state_mode"):
        set_state_mode(zero, "noise")


@pytest.mark.parametrize("cls", CELLS)
def test_accumulated_eval_state_is_the_mean_training_state(cls):
    torch.manual_seed(0)
    cell = cls(3, 4)
    net = nn.Sequential(nn.BatchNorm2d(3), cell)
    data = batches(3)
    # the expected mean: replay the carried training states on a copy
    twin = copy.deepcopy(net)
    twin.eval()
    twin[1].train()
    states = []
    with torch.no_grad():
        for x in data:
            twin(x)
            states.append(twin[1].states[0])
    expected = torch.cat(states).mean(0, keepdim=True)
    bn_before = copy.deepcopy(net[0].state_dict())
    net.train()
    assert accumulate_eval_states(net, data) == 1
    assert net.training and cell.training and cell.states is None  # flags restored, training state reset
    assert all(torch.equal(v, net[0].state_dict()[k]) for k, v in bn_before.items())  # BN statistics untouched
    assert torch.allclose(cell.eval_states[0], expected, atol=1e-6)
    x = batches(1, (5, 3, 6, 6), seed=9)[0]
    net.eval()
    with torch.no_grad():
        with_state = net(x)
        single = net(x[:1])
        assert torch.allclose(with_state[:1], single, atol=1e-6)  # a test feature depends on its image only
        cell.set_eval_states(None)
        zeros = net(x)
    assert not torch.allclose(with_state, zeros)
    with pytest.raises(RuntimeError, match="accumulated at"):
        accumulate_eval_states(net, data)
        net(batches(1, (2, 3, 8, 8))[0])


def test_zero_mode_keeps_zero_eval_state():
    torch.manual_seed(0)
    cell = BConvCell(3, 4)
    set_state_mode(cell, "zero")
    assert accumulate_eval_states(cell, batches(2)) == 0 and cell.eval_states is None
    with pytest.raises(ValueError, match="no images"):
        accumulate_eval_states(BConvCell(3, 4), [])
