"""ptl_ext.reid.compute_distance: squared euclidean and cosine, blocks, dtypes, duplicates, errors."""

import numpy as np
import pytest
import torch

from ptl_ext import ops, reference
from ptl_ext.reid import compute_distance

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _features(seed, num_q=13, num_g=29, dim=24):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(num_q, dim, generator=g), torch.randn(num_g, dim, generator=g)


@pytest.mark.parametrize("block_rows", [None, 1, 5])
def test_euclidean_matches_exact(block_rows):
    qf, gf = _features(0)
    want = ((qf.double()[:, None] - gf.double()[None]) ** 2).sum(-1)
    got = compute_distance(qf, gf, block_rows=block_rows)
    assert got.dtype == torch.float32 and got.shape == (13, 29)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)


def test_cosine_and_float64():
    qf, gf = _features(1)
    want = 1 - torch.nn.functional.normalize(qf.double(), dim=1) @ torch.nn.functional.normalize(gf.double(), dim=1).T
    torch.testing.assert_close(compute_distance(qf, gf, "cosine").double(), want, rtol=0, atol=1e-6)
    got = compute_distance(qf.double(), gf.double())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, ((qf.double()[:, None] - gf.double()[None]) ** 2).sum(-1))


def test_numpy_and_half_inputs():
    qf, gf = _features(2)
    want = compute_distance(qf, gf)
    torch.testing.assert_close(compute_distance(qf.numpy(), gf.numpy()), want)
    half = compute_distance(qf.half(), gf.half())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, compute_distance(qf.half().float(), gf.half().float()))


def test_duplicates_are_exact_zeros_and_ties():
    qf, gf = _features(3, dim=2048)
    qf = qf * 30
    gf[4] = qf[2]
    gf[9] = qf[2]
    d = compute_distance(qf, gf)
    assert d[2, 4] == 0 and d[2, 9] == 0
    torch.testing.assert_close(d[:, 4], d[:, 9], rtol=0, atol=0)


def test_kernel_matches_twin():
    qf, gf = _features(4, 37, 301, 40)
    qn, gn = qf.pow(2).sum(1), gf.pow(2).sum(1)
    torch.testing.assert_close(ops.squared_euclidean(qf, gf, qn, gn), reference.squared_euclidean(qf, gf, qn, gn))


@pytest.mark.parametrize("device", DEVICES)
def test_device_matches_cpu(device):
    """Each metric on ``device`` against the CPU (on the CPU itself: the same calls, the result's device)."""
    qf, gf = _features(5)
    for metric in ("euclidean", "cosine"):
        got = compute_distance(qf.to(device), gf.to(device), metric)
        assert got.device.type == device
        torch.testing.assert_close(got.cpu(), compute_distance(qf, gf, metric), rtol=1e-5, atol=1e-4)


def test_errors():
    qf, gf = _features(6)
    with pytest.raises(ValueError, match="qf must be a 2-D"):
        compute_distance(qf[0], gf)
    with pytest.raises(ValueError, match="same feature size"):
        compute_distance(qf, gf[:, :5])
    with pytest.raises(ValueError, match="gf must be non-empty"):
        compute_distance(qf, gf[:0])
    with pytest.raises(ValueError, match="NaN or inf"):
        compute_distance(torch.where(qf > 2, float("nan"), qf), gf)
    with pytest.raises(TypeError, match="floating dtype"):
        compute_distance(qf.long(), gf)
    with pytest.raises(TypeError, match="torch.Tensor or numpy.ndarray"):
        compute_distance(qf.tolist(), gf)
    with pytest.raises(ValueError, match="metric"):
        compute_distance(qf, gf, "manhattan")
    with pytest.raises(ValueError, match="block_rows"):
        compute_distance(qf, gf, block_rows=0)
    assert np.isfinite(compute_distance(qf, gf).numpy()).all()
