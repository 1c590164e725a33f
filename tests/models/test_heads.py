"""Classifier heads: layer layout, shapes and argument checks."""

import pytest
import torch
from torch import nn

from ptl_ext.models.heads import MLPHead, make_head


def linear_shapes(head):
    return [(m.in_features, m.out_features) for m in head.modules() if isinstance(m, nn.Linear)]


def test_reid_head_is_three_fc_layers_with_bn_relu_dropout():
    head = make_head("reid", 2048, 751)
    assert linear_shapes(head) == [(2048, 1024), (1024, 512), (512, 751)]
    kinds = [type(m) for m in head.layers]
    assert kinds.count(nn.BatchNorm1d) == 2 and kinds.count(nn.ReLU) == 2
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert head(torch.randn(3, 2048)).shape == (3, 751)


def test_cifar_head_is_two_linear_layers():
    head = make_head("cifar", 342, 100)
    assert linear_shapes(head) == [(342, 512), (512, 100)]
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in head.modules())
    assert head(torch.randn(1, 342)).shape == (1, 100)


def test_head_sizes_are_configurable():
    head = make_head("reid", 64, 5, hidden=(32,), dropout=0.0)
    assert linear_shapes(head) == [(64, 32), (32, 5)]
    assert not any(isinstance(m, nn.Dropout) for m in head.modules())


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: make_head("imagenet", 8, 2), ValueError, "head must be one of"),
        (lambda: MLPHead(0, 2), ValueError, "in_features"),
        (lambda: MLPHead(8, 0), ValueError, "num_classes"),
        (lambda: MLPHead(8, 2, hidden=(4, -1)), ValueError, "hidden"),
        (lambda: MLPHead(8, 2, dropout=1.0), ValueError, "dropout"),
    ],
)
def test_bad_head_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_rolling_back_head_is_512_fc_bn_leaky_relu_fc():
    head = make_head("rolling_back", 2048, 751)
    assert linear_shapes(head) == [(2048, 512), (512, 751)]
    assert [type(m) for m in head.layers] == [nn.Linear, nn.BatchNorm1d, nn.LeakyReLU, nn.Linear]
    assert head(torch.randn(3, 2048)).shape == (3, 751)


def test_he_init_draws_fan_in_normal_weights_and_zero_biases():
    torch.manual_seed(0)
    head = make_head("rolling_back", 4096, 1000, init="he")
    last = head.layers[-1]
    assert torch.count_nonzero(last.bias) == 0
    assert last.weight.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.05)  # 512 inputs, 512 000 draws
    torch_default = make_head("rolling_back", 4096, 1000).layers[-1]
    assert torch_default.weight.abs().max().item() <= (1 / 512) ** 0.5  # PyTorch's bound 1/sqrt(fan_in)
    with pytest.raises(ValueError, match="init must be one of"):
        make_head("reid", 8, 2, init="xavier")


def test_the_registry_declares_the_heads_that_exist():
    """``ptl train --help`` and the RunSpec read the head names from the torch-free registry."""
    from ptl_ext.models._registry import HEAD_NAMES, REID_HEADS
    from ptl_ext.models.heads import BNNECK_HEADS, HEADS

    built = set(HEADS) | set(BNNECK_HEADS)
    assert set(HEAD_NAMES) == built and set(REID_HEADS) == built - {"cifar"}
