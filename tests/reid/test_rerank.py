"""ptl_ext.reid.re_ranking equals the dense textbook algorithm on many random problems."""

import numpy as np
import pytest
import torch

from ptl_ext.reid import re_ranking
from ptl_ext.reid.knn import faiss_available

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _case(seed):
    rng = np.random.default_rng(seed)
    num_q, num_g, dim = int(rng.integers(1, 30)), int(rng.integers(5, 90)), int(rng.integers(2, 24))
    n = num_q + num_g
    centres = rng.normal(size=(int(rng.integers(2, 12)), dim)) * 2
    x = (centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dim))).astype(np.float32)
    for _ in range(int(rng.integers(0, 10))):  # duplicate features
        a, b = rng.integers(0, n, 2)
        x[a] = x[b]
    k1 = int(rng.integers(1, min(25, n - 1) + 1))
    k2 = int(rng.integers(1, min(k1 + 1, 8) + 1))
    return x[:num_q], x[num_q:], k1, k2, float(rng.uniform())


@pytest.mark.parametrize("seed", range(40))
def test_matches_textbook(textbook, seed):
    qf, gf, k1, k2, lam = _case(seed)
    want = textbook.re_ranking(qf, gf, k1, k2, lam)
    got = re_ranking(torch.from_numpy(qf), torch.from_numpy(gf), k1, k2, lam)
    assert got.shape == want.shape and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("k1, k2, lam", [(20, 6, 0.3), (1, 1, 0.0), (2, 1, 1.0), (5, 6, 0.5), (3, 4, 0.3)])
def test_parameters_match_textbook(textbook, problem, k1, k2, lam):
    p = problem(11, 25, 70, 8, 3, duplicates=5)
    want = textbook.re_ranking(p["qf"], p["gf"], k1, k2, lam)
    np.testing.assert_allclose(re_ranking(p["qf"], p["gf"], k1, k2, lam).numpy(), want, rtol=0, atol=1e-5)


def test_blocks_and_inputs_agree():
    qf, gf, k1, k2, lam = _case(3)
    base = re_ranking(qf, gf, k1, k2, lam)
    for got in (
        re_ranking(qf, gf, k1, k2, lam, block_rows=2),
        re_ranking(torch.from_numpy(qf).double(), torch.from_numpy(gf).double(), k1, k2, lam),
    ):
        torch.testing.assert_close(got, base, rtol=0, atol=1e-6)


@pytest.mark.skipif(not faiss_available(), reason="needs faiss")
@pytest.mark.parametrize("seed", range(5))
def test_faiss_backend_matches_textbook(textbook, seed):
    qf, gf, k1, k2, lam = _case(seed)
    want = textbook.re_ranking(qf, gf, k1, k2, lam)
    np.testing.assert_allclose(re_ranking(qf, gf, k1, k2, lam, backend="faiss").numpy(), want, rtol=0, atol=1e-5)


def test_defaults_and_identical_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    d = re_ranking(x[:10], x[10:])
    assert d.shape == (10, 30) and torch.isfinite(d).all()
    same = np.ones((5, 3), dtype=np.float32)  # every distance 0: normalised distances are 0, not NaN
    assert torch.isfinite(re_ranking(same[:2], same[2:], k1=2, k2=2)).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", range(4))
def test_device_matches_the_textbook(textbook, device, seed):
    qf, gf, k1, k2, lam = _case(seed)
    got = re_ranking(torch.from_numpy(qf).to(device), torch.from_numpy(gf).to(device), k1, k2, lam)
    assert got.device.type == device
    np.testing.assert_allclose(got.cpu().numpy(), textbook.re_ranking(qf, gf, k1, k2, lam), rtol=0, atol=1e-5)


def test_errors():
    qf, gf, *_ = _case(1)
    n = len(qf) + len(gf)
    with pytest.raises(ValueError, match="k1 \\+ 1"):
        re_ranking(qf, gf, k1=n)
    with pytest.raises(ValueError, match="k2"):
        re_ranking(qf, gf, k1=2, k2=n + 1)
    with pytest.raises(ValueError, match="k1 must be an integer"):
        re_ranking(qf, gf, k1=0)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(qf, gf, k1=2, lambda_value=1.5)
    with pytest.raises(ValueError, match="backend"):
        re_ranking(qf, gf, k1=2, backend="annoy")
    with pytest.raises(ValueError, match="NaN"):
        re_ranking(np.full_like(qf, np.nan), gf, k1=2)
    with pytest.raises(ValueError, match="qf must be non-empty"):
        re_ranking(qf[:0], gf, k1=2)
    with pytest.raises(ValueError, match="same feature size"):
        re_ranking(qf, gf[:, :1], k1=2)


def test_default_blocks_are_sized_for_the_device(monkeypatch):
    from ptl_ext.reid import _validate
    from ptl_ext.reid.config import RerankConfig
    from ptl_ext.reid.rerank import rerank_block_entries, rerank_blocks

    assert rerank_block_entries("cpu") == _validate.BLOCK_ENTRIES
    # the CUDA Jaccard step also holds a float64 accumulator of the whole block: half the entries
    assert rerank_block_entries(torch.device("cuda", 0)) == _validate.BLOCK_ENTRIES // 2
    monkeypatch.setattr(_validate, "BLOCK_ENTRIES", 40)
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(9, 8, generator=g), torch.randn(10, 8, generator=g)
    blocks = list(rerank_blocks(qf, gf, RerankConfig(k1=4, k2=2, lambda_value=0.3), "torch"))
    assert [(q0, block.shape[0]) for q0, block in blocks] == [(0, 4), (4, 4), (8, 1)]
    whole = re_ranking(qf, gf, k1=4, k2=2, lambda_value=0.3, backend="torch", block_rows=9)
    assert torch.equal(torch.cat([block for _, block in blocks]), whole)
