"""The re-ranking ops: compiled kernels against their pure-PyTorch twins, opcheck, argument errors."""

import pathlib
import re

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
    qe = ops.rerank_query_expansion(v, idx, 4)
    _assert_csr(qe, reference.rerank_query_expansion(v, idx, 4))
    num_q = 30
    inv = _gallery_index(qe, num_q)
    dist = ops.squared_euclidean(x[5:20], x[num_q:], norms[5:20], norms[num_q:])
    got = ops.rerank_jaccard(dist, rowmax[5:20], qe, 5, inv, 0.3)
    want = reference.rerank_jaccard(dist, rowmax[5:20], qe, 5, inv, 0.3)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_twins_end_to_end_match_textbook(textbook, monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(70, 6)).astype(np.float32)
    x[50] = x[3]
    want = textbook.re_ranking(x[:20], x[20:], 7, 3, 0.3)
    monkeypatch.setattr(ops, "_compiled", lambda name, tensor: None)  # every op on its torch twin
    np.testing.assert_allclose(re_ranking(x[:20], x[20:], 7, 3, 0.3).numpy(), want, rtol=0, atol=1e-5)


def test_opcheck():
    x, norms, idx, rowmax = _graph(5, n=40, k1=4, k2=3)
    v = ops.rerank_sparse_v(x, rowmax, idx, 4, 2)
    inv = _gallery_index(v, 10)
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
        ops.rerank_query_expansion(v._replace(ptr=v.ptr + 1), idx, 3)
    with pytest.raises(ValueError, match="entries of col must lie in"):
        ops.rerank_query_expansion(v._replace(col=v.col + 30), idx, 3)
    with pytest.raises(ValueError, match="val must have shape"):
        ops.rerank_query_expansion(v._replace(val=v.val[:-1]), idx, 3)
    inv = _gallery_index(v, 10)
    dist = torch.zeros(5, 20)
    with pytest.raises(ValueError, match="must lie within the 30 rows"):
        ops.rerank_jaccard(dist, rowmax[:5], v, 28, inv, 0.3)
    with pytest.raises(ValueError, match="entries of inv_row must lie in"):
        ops.rerank_jaccard(dist[:, :3], rowmax[:5], v, 0, inv, 0.3)
    with pytest.raises(ValueError, match="lambda_value"):
        ops.rerank_jaccard(dist, rowmax[:5], v, 0, inv, 2.0)
    with pytest.raises(ValueError, match="g_pids must have shape"):
        ops.reid_rank_stats(
            dist,
            torch.zeros(5, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(5, dtype=torch.long),
            torch.zeros(20, dtype=torch.long),
        )


def test_unchecked_jaccard_equals_checked_and_passes_opcheck():
    x, norms, idx, rowmax = _graph(7, n=50, k1=5, k2=3)
    v = ops.rerank_query_expansion(ops.rerank_sparse_v(x, rowmax, idx, 5, 2), idx, 3)
    inv = _gallery_index(v, 12)
    dist = ops.squared_euclidean(x[4:12], x[12:], norms[4:12], norms[12:])
    checked = ops.rerank_jaccard(dist=dist, rowmax=rowmax[4:12], v=v, row_start=4, inverse=inv, lambda_value=0.3)
    unchecked = ops.rerank_jaccard(
        dist=dist, rowmax=rowmax[4:12], v=v, row_start=4, inverse=inv, lambda_value=0.3, check_csr=False
    )
    assert torch.equal(checked, unchecked)
    torch.library.opcheck(
        torch.ops.ptl_ext.rerank_jaccard_unchecked.default,
        (dist, rowmax[4:12], *v, 4, *inv, 0.3),
        test_utils=("test_schema", "test_faketensor"),
    )
    with pytest.raises(ValueError, match="rerank_jaccard_unchecked: lambda_value"):  # O(1) checks stay
        ops.rerank_jaccard(dist, rowmax[4:12], v, 4, inv, 1.5, check_csr=False)
    with pytest.raises(ValueError, match="must lie within the 50 rows"):
        ops.rerank_jaccard(dist, rowmax[4:12], v, 45, inv, 0.3, check_csr=False)


def _local_scalar_calls(fn):
    """How many host reads of a tensor element (``.item()``, ``bool(t)``; ``aten::_local_scalar_dense``,
    also from inside the compiled ops) ``fn()`` makes."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key == "aten::_local_scalar_dense")


def test_per_block_path_makes_no_host_sync(problem):
    p = problem(11, 24, 60, 8, 3)
    qf, gf = torch.from_numpy(p["qf"]), torch.from_numpy(p["gf"])
    one_block = re_ranking(qf, gf, k1=6, k2=3)
    many_blocks = re_ranking(qf, gf, k1=6, k2=3, block_rows=1)
    torch.testing.assert_close(one_block, many_blocks, rtol=0, atol=1e-6)  # GEMM rounding depends on the block
    syncs_one = _local_scalar_calls(lambda: re_ranking(qf, gf, k1=6, k2=3))
    syncs_many = _local_scalar_calls(lambda: re_ranking(qf, gf, k1=6, k2=3, block_rows=1))
    assert syncs_one > 0  # the profiler sees the syncs of the first block's checks
    assert syncs_many == syncs_one  # 24 blocks: the later 23 add none


def _bad_calls(x, norms, idx, rowmax, v, inv, dist):
    """(op name, args) pairs each of which the compiled op refuses without reading any data."""
    return [
        ("squared_euclidean", (x.double(), x.double(), norms.double(), norms.double())),
        ("squared_euclidean", (x, x[:, :3], norms, norms)),
        ("squared_euclidean", (x, x, norms[:4], norms)),
        ("rerank_knn", (x, norms, 0, 4)),
        ("rerank_knn", (x[0], norms, 2, 4)),
        ("rerank_knn", (x, norms.double(), 2, 4)),
        ("rerank_sparse_v", (x, rowmax, idx[:, :2], 4, 2)),
        ("rerank_sparse_v", (x, rowmax, idx.int(), 4, 2)),
        ("rerank_sparse_v", (x, rowmax, idx, 4, 5)),
        ("rerank_query_expansion", (*v, idx, 0)),
        ("rerank_query_expansion", (v.ptr[:-1], v.col, v.val, idx, 3)),
        ("rerank_query_expansion", (v.ptr, v.col, v.val.double(), idx, 3)),
        ("rerank_jaccard", (dist, rowmax[:10], *v, 0, *inv, 2.0)),
        ("rerank_jaccard", (dist, rowmax[:10], *v, 25, *inv, 0.3)),
        ("rerank_jaccard", (dist.double(), rowmax[:10], *v, 0, *inv, 0.3)),
        ("rerank_jaccard_unchecked", (dist, rowmax[:9], *v, 0, *inv, 0.3)),
        ("reid_rank_stats", (dist, idx[:10, 0], idx[:, 0], idx[:10, 0], idx[:20, 0])),
        ("reid_rank_stats", (dist, idx[:10, 0].int(), idx[:20, 0], idx[:10, 0], idx[:20, 0])),
    ]


def test_fake_kernels_raise_the_types_of_the_compiled_ops():
    x, norms, idx, rowmax = _graph(8, n=30, k1=4, k2=3)
    v = ops.rerank_sparse_v(x, rowmax, idx, 4, 2)
    inv = _gallery_index(v, 10)
    dist = ops.squared_euclidean(x[:10], x[10:], norms[:10], norms[10:])
    for name, args in _bad_calls(x, norms, idx, rowmax, v, inv, dist):
        op = getattr(torch.ops.ptl_ext, name).default
        with pytest.raises((ValueError, TypeError)) as real:
            op(*args)
        meta = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in args]
        with pytest.raises(real.type) as fake:
            op(*meta)
        assert real.type is fake.type, (name, str(real.value), str(fake.value))
        assert str(fake.value).startswith(f"{name}:"), str(fake.value)


def test_python_constants_equal_the_cpp_ones():
    from ptl_ext import _torch_kernels

    header = (pathlib.Path(__file__).parents[2] / "csrc" / "rerank" / "rerank_math.h").read_text()
    zero_tol = re.search(r"constexpr float kZeroTol = ([0-9.eE+-]+)f;", header)
    knn_extra = re.search(r"constexpr int64_t kKnnExtra = (\d+);", header)
    assert zero_tol and knn_extra, "the constants of rerank_math.h were renamed: update this test"
    assert np.float32(zero_tol.group(1)) == np.float32(_torch_kernels.ZERO_TOL)
    assert float(zero_tol.group(1)) == _torch_kernels.ZERO_TOL
    assert int(knn_extra.group(1)) == _torch_kernels.KNN_EXTRA
