"""The re-ranking ops: compiled kernels against their pure-PyTorch twins, opcheck, argument errors."""

import numpy as np
import pytest
import torch

from ptl_ext import ops, reference
from ptl_ext.reid import re_ranking
from ptl_ext.reid.rerank import _gallery_index


def _graph(seed, n=120, dim=10, k1=8, k2=4, duplicates=8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    for _ in range(duplicates):
        a, b = rng.integers(0, n, 2)
        x[a] = x[b]
    x = torch.from_numpy(x)
    norms = x.pow(2).sum(1)
    _, idx, rowmax = ops.rerank_knn(x, norms, max(k1 + 1, k2), 32)
    return x, norms, idx, rowmax


def _assert_csr(got, want):
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    torch.testing.assert_close(got[2], want[2], rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed, k1", [(0, 8), (1, 1), (2, 20), (3, 5)])
def test_sparse_steps_match_twins(seed, k1):
    x, norms, idx, rowmax = _graph(seed, k1=k1)
    v = ops.rerank_sparse_v(x, rowmax, idx, k1, round(k1 / 2))
    _assert_csr(v, reference.rerank_sparse_v(x, rowmax, idx, k1, round(k1 / 2)))
    rows = torch.arange(len(x)).repeat_interleave(v[0].diff())
    assert ((v[1][1:] > v[1][:-1]) | (rows[1:] != rows[:-1])).all()  # ascending columns within a row
    sums = torch.zeros(len(x)).index_add_(0, rows, v[2])
    torch.testing.assert_close(sums, (v[0].diff() > 0).float())  # rows sum to 1 (a row may be empty)
    qe = ops.rerank_query_expansion(*v, idx, 4)
    _assert_csr(qe, reference.rerank_query_expansion(*v, idx, 4))
    num_q = 30
    inv = _gallery_index(*qe, num_q)
    dist = ops.squared_euclidean(x[5:20], x[num_q:], norms[5:20], norms[num_q:])
    got = ops.rerank_jaccard(dist, rowmax[5:20], *qe, 5, *inv, 0.3)
    want = reference.rerank_jaccard(dist, rowmax[5:20], *qe, 5, *inv, 0.3)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_twins_end_to_end_match_textbook(textbook, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, 6)).astype(np.float32)
    x[50] = x[3]
    want = textbook.re_ranking(x[:20], x[20:], 7, 3, 0.3)
    monkeypatch.setattr(ops, "_rerank_impl", lambda name, tensor: getattr(reference, name))
    np.testing.assert_allclose(re_ranking(x[:20], x[20:], 7, 3, 0.3).numpy(), want, rtol=0, atol=1e-5)


def test_opcheck():
    x, norms, idx, rowmax = _graph(5, n=40, k1=4, k2=3)
    v = ops.rerank_sparse_v(x, rowmax, idx, 4, 2)
    inv = _gallery_index(*v, 10)
    dist = ops.squared_euclidean(x[:10], x[10:], norms[:10], norms[10:])
    q_pids, g_pids = torch.arange(10) % 4, torch.arange(30) % 4
    cases = [
        (torch.ops.ptl_ext.squared_euclidean.default, (x[:10], x[10:], norms[:10], norms[10:])),
        (torch.ops.ptl_ext.rerank_knn.default, (x, norms, 5, 16)),
        (torch.ops.ptl_ext.rerank_sparse_v.default, (x, rowmax, idx, 4, 2)),
        (torch.ops.ptl_ext.rerank_query_expansion.default, (*v, idx, 3)),
        (torch.ops.ptl_ext.rerank_jaccard.default, (dist, rowmax[:10], *v, 0, *inv, 0.3)),
        (torch.ops.ptl_ext.reid_rank_stats.default, (dist, q_pids, g_pids, q_pids % 2, g_pids % 3)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor"))


def test_op_errors():
    x, norms, idx, rowmax = _graph(6, n=30, k1=4, k2=3)
    v = ops.rerank_sparse_v(x, rowmax, idx, 4, 2)
    with pytest.raises(ValueError, match="nn_idx must have at least 5 columns"):
        ops.rerank_sparse_v(x, rowmax, idx[:, :3], 4, 2)
    with pytest.raises(ValueError, match="entries of nn_idx must lie in"):
        ops.rerank_sparse_v(x, rowmax, idx + 100, 4, 2)
    with pytest.raises(ValueError, match="k_half must be in"):
        ops.rerank_sparse_v(x, rowmax, idx, 4, 5)
    with pytest.raises(ValueError, match="ptr must start at 0"):
        ops.rerank_query_expansion(v[0] + 1, v[1], v[2], idx, 3)
    with pytest.raises(ValueError, match="entries of col must lie in"):
        ops.rerank_query_expansion(v[0], v[1] + 30, v[2], idx, 3)
    with pytest.raises(ValueError, match="val must have shape"):
        ops.rerank_query_expansion(v[0], v[1], v[2][:-1], idx, 3)
    inv = _gallery_index(*v, 10)
    dist = torch.zeros(5, 20)
    with pytest.raises(ValueError, match="must lie within the 30 rows"):
        ops.rerank_jaccard(dist, rowmax[:5], *v, 28, *inv, 0.3)
    with pytest.raises(ValueError, match="entries of inv_row must lie in"):
        ops.rerank_jaccard(dist[:, :3], rowmax[:5], *v, 0, *inv, 0.3)
    with pytest.raises(ValueError, match="lambda_value"):
        ops.rerank_jaccard(dist, rowmax[:5], *v, 0, *inv, 2.0)
    with pytest.raises(ValueError, match="g_pids must have shape"):
        ops.reid_rank_stats(dist, torch.zeros(5, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                            torch.zeros(5, dtype=torch.long), torch.zeros(20, dtype=torch.long))
