"""A network whose features overflow (a huge learning rate) is reported as a divergence, not as bad query
features."""

import pytest
import torch
from torch import nn

from ptl_ext.errors import DivergenceError
from ptl_ext.train import extract_features


class Overflowing(nn.Module):
    def forward(self, x):
        return x.mean((2, 3)) * torch.tensor([1.0, float("inf"), 1.0])


def test_non_finite_features_are_a_divergence_error():
    loader = [(torch.ones(2, 3, 4, 4), torch.tensor([1, 2]), torch.tensor([0, 1]))]
    with pytest.raises(DivergenceError, match="NaN or infinite for 2 of 2 images: its weights have diverged"):
        extract_features(Overflowing(), loader)


def test_finite_features_pass():
    loader = [(torch.ones(2, 3, 4, 4), torch.tensor([1, 2]), torch.tensor([0, 1]))]
    features, pids, _ = extract_features(nn.Flatten(), loader, flip=False)
    assert features.shape == (2, 48) and pids.tolist() == [1, 2]


def test_a_huge_learning_rate_ends_in_one_line_about_divergence(market, tmp_path, cli, util):
    status, err = cli(*util.train_argv(market, tmp_path / "run", "--lr", "1000"))
    assert status == 2 and "diverged" in util.one_line(err)
