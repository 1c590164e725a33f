"""Re-ranking on CUDA: the CUDA kernels against the CPU ones at op level (past the 32,768-row workspace
chunk), mixed devices, and IEEE float32 distances whatever the TF32 setting."""

import numpy as np
import pytest
import torch

from ptl_ext import _torch_kernels, ops, reference
from ptl_ext.reid.rerank import _gallery_index

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def test_ieee_matmul_context_sets_and_restores_the_cuda_setting():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with _torch_kernels.ieee_float32_matmul(torch.device("cpu")):
        assert matmul.fp32_precision == before  # other devices: untouched
    for user in ("tf32", "ieee", before):
        matmul.fp32_precision = user
        try:
            with _torch_kernels.ieee_float32_matmul("cuda"):
                assert matmul.fp32_precision == "ieee"
            assert matmul.fp32_precision == user
            with pytest.raises(KeyError), _torch_kernels.ieee_float32_matmul("cuda:0"):
                raise KeyError("restored on errors too")
            assert matmul.fp32_precision == user
        finally:
            matmul.fp32_precision = before


def _graph(n, dim, k, seed):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(size=(n, dim)).astype(np.float32))
    x[n // 2] = x[3]  # one exact duplicate
    norms = x.pow(2).sum(1)
    _, idx, rowmax = ops.rerank_knn(x, norms, k, 256)
    return x, norms, idx, rowmax


def _assert_same_csr(got, want, atol):
    assert torch.equal(got[0].cpu(), want[0]) and torch.equal(got[1].cpu(), want[1])
    torch.testing.assert_close(got[2].cpu(), want[2], rtol=0, atol=atol)


def _to(device, *ts):
    return [t.to(device) for t in ts]


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_sparse_ops_match_the_reference_past_the_workspace_chunk(device):
    """33,000 rows (> 32,768, so the CUDA set building runs in two chunks): each op on ``device`` against
    the pure-PyTorch reference; CSR structure exact, values within 1e-6, final distances within 1e-5."""
    k1, k2, num_q = 20, 6, 1000
    x, norms, idx, rowmax = _graph(33_000, 16, k1 + 1, seed=0)
    v_ref = reference.rerank_sparse_v(x, rowmax, idx, k1, round(k1 / 2))
    v = ops.rerank_sparse_v(*_to(device, x, rowmax, idx), k1, round(k1 / 2))
    assert isinstance(v, ops.CSR) and v.val.device.type == device
    _assert_same_csr(v, v_ref, 1e-6)
    qe_ref = reference.rerank_query_expansion(v_ref, idx, k2)
    qe = ops.rerank_query_expansion(ops.CSR(*_to(device, *v)), idx.to(device), k2)
    _assert_same_csr(qe, qe_ref, 1e-6)
    inv_ref = _gallery_index(qe_ref, num_q)
    inv = _gallery_index(qe, num_q)
    _assert_same_csr(inv, inv_ref, 1e-6)
    rows = slice(200, 456)
    dist = ops.squared_euclidean(x[rows], x[num_q:], norms[rows], norms[num_q:])
    want = reference.rerank_jaccard(dist, rowmax[rows], qe_ref, rows.start, inv_ref, 0.3)
    d_dist, d_rowmax = _to(device, dist, rowmax[rows])
    got = ops.rerank_jaccard(d_dist, d_rowmax, qe, rows.start, inv, 0.3)
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=1e-5)
    again = ops.rerank_jaccard(d_dist, d_rowmax, qe, rows.start, inv, 0.3, check_csr=False)
    torch.testing.assert_close(again, got, rtol=0, atol=1e-7)  # double sums: run-to-run within rounding


@pytest.mark.parametrize("device", DEVICES)
def test_sparse_ops_empty_blocks_and_mixed_devices(device):
    """An empty query block gives an empty result on ``device``; an argument on the other device is
    named in the error (only where there is another device: CUDA)."""
    x, norms, idx, rowmax = _graph(60, 8, 6, seed=1)
    v = ops.rerank_sparse_v(*_to(device, x, rowmax, idx), 5, 2)
    inv = _gallery_index(v, 10)
    empty = ops.rerank_jaccard(torch.empty(0, 50, device=device), torch.empty(0, device=device), v, 0, inv, 0.3)
    assert empty.shape == (0, 50) and empty.device.type == device
    torch.testing.assert_close(
        ops.rerank_jaccard(*_to(device, torch.zeros(2, 50), torch.ones(2)), v, 0, inv, 0.3).cpu(),
        reference.rerank_jaccard(
            torch.zeros(2, 50), torch.ones(2), ops.CSR(*_to("cpu", *v)), 0, ops.CSR(*_to("cpu", *inv)), 0.3
        ),
        rtol=0,
        atol=1e-6,
    )
    if device == "cpu":
        return
    with pytest.raises(ValueError, match=r"rowmax must be on cuda:\d, got cpu"):
        ops.rerank_sparse_v(x.cuda(), rowmax, idx.cuda(), 5, 2)
    with pytest.raises(ValueError, match=r"nn_idx must be on cpu, got cuda"):
        ops.rerank_sparse_v(x, rowmax, idx.cuda(), 5, 2)
    with pytest.raises(ValueError, match=r"must be on cpu, got cuda"):
        ops.rerank_query_expansion(v, idx, 3)
    dist = ops.squared_euclidean(x[:10], x[10:], norms[:10], norms[10:])
    with pytest.raises(ValueError, match=r"ptr must be on cpu, got cuda"):
        ops.rerank_jaccard(dist, rowmax[:10], v, 0, inv, 0.3)


@pytest.mark.cuda
def test_cuda_distances_ignore_tf32(monkeypatch):
    """With TF32 switched on by the user, the kNN distances, row maxima and block distances on CUDA stay
    at float32 accuracy (TF32 would be ~1e-3 off)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "fp32_precision", "tf32")
    x, norms, *_ = _graph(500, 256, 5, seed=2)
    want = reference.squared_euclidean(x.double(), x.double(), norms.double(), norms.double())
    got = ops.squared_euclidean(x.cuda(), x.cuda(), norms.cuda(), norms.cuda())
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    torch.testing.assert_close(got.cpu().double(), want, rtol=0, atol=1e-5 * float(want.max()))
    _, idx_cpu, rowmax_cpu = ops.rerank_knn(x, norms, 5, 128)
    _, idx_gpu, rowmax_gpu = ops.rerank_knn(x.cuda(), norms.cuda(), 5, 128)
    assert torch.equal(idx_gpu.cpu(), idx_cpu)
    torch.testing.assert_close(rowmax_gpu.cpu(), rowmax_cpu, rtol=1e-5, atol=0)
