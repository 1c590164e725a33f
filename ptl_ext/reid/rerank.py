"""Exact k-reciprocal re-ranking (Zhong et al., CVPR 2017), computed sparsely.

With d the squared euclidean distances over all Q+G features, each row divided by its maximum:
R(p, k1) holds the members of p's k1+1 nearest (self included) that have p among their own k1+1
nearest; it is expanded by R(c, round(k1/2)) of each member c whose overlap with R(p, k1) exceeds 2/3
of it; V_p = exp(-d(p, .)) over the expanded set, normalised to sum 1; query expansion replaces V_p by
the mean of V over p's k2 nearest; the Jaccard distance is 1 - m/(2 - m) with m = sum min(V_q, V_g);
final = (1 - lambda)·Jaccard + lambda·d. Neighbour ties break by index; "exact" means equal to the
dense algorithm in exact arithmetic (V is kept in float32 rather than the float16 of the original code).

Memory is O(N·k1) for the neighbour table and the sparse V, plus one block of query rows x gallery:
no N x N matrix is formed.
"""

import torch

from .. import ops
from . import _validate
from .distance import gather_blocks, squared_norms
from .knn import knn_graph


def _gallery_index(ptr, col, val, num_query):
    """Inverted index of V's gallery rows: CSR over the N columns of (gallery row, value)."""
    n = ptr.numel() - 1
    start = ptr[num_query]
    g_col, g_val = col[start:], val[start:]
    g_row = torch.arange(n - num_query, device=ptr.device).repeat_interleave(ptr[num_query + 1 :] - ptr[num_query:-1])
    order = torch.argsort(g_col, stable=True)
    counts = torch.bincount(g_col, minlength=n)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)]), g_row[order], g_val[order]


def _check_parameters(k1, k2, lambda_value, total):
    k1 = _validate.positive_int(k1, "k1")
    k2 = _validate.positive_int(k2, "k2")
    if k1 + 1 > total:
        raise ValueError(f"k1 + 1 = {k1 + 1} neighbours are needed but there are only Q + G = {total} features")
    if k2 > total:
        raise ValueError(f"k2 = {k2} exceeds the number of features Q + G = {total}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")
    return k1, k2, float(lambda_value)


def rerank_blocks(qf, gf, k1=20, k2=6, lambda_value=0.3, backend="auto", block_rows=None):
    """Yield ``(q0, block)``: re-ranked distances ``[rows, G]`` float32 of query rows ``q0 ..``.

    ``qf [Q, D]`` and ``gf [G, D]`` are checked tensors (:func:`ptl_ext.reid._validate.feature_pair`);
    other arguments as in :func:`re_ranking`. Only one block of query rows x gallery is held at a time.
    """
    num_q, num_g = qf.shape[0], gf.shape[0]
    k1, k2, lambda_value = _check_parameters(k1, k2, lambda_value, num_q + num_g)
    x = torch.cat([qf, gf]).float()
    norms = squared_norms(x)
    _, nn_idx, rowmax = knn_graph(x, norms, max(k1 + 1, k2), backend)
    v = ops.rerank_sparse_v(x, rowmax, nn_idx, k1, round(k1 / 2))
    if k2 > 1:
        v = ops.rerank_query_expansion(*v, nn_idx, k2)
    del nn_idx
    inv = _gallery_index(*v, num_q)
    gallery, g_norms = x[num_q:], norms[num_q:]
    rows = _validate.block_rows(block_rows, num_g)
    for q0 in range(0, num_q, rows):
        q1 = min(num_q, q0 + rows)
        dist = ops.squared_euclidean(x[q0:q1], gallery, norms[q0:q1], g_norms)
        yield q0, ops.rerank_jaccard(dist, rowmax[q0:q1], *v, q0, *inv, lambda_value)


def re_ranking(qf, gf, k1=20, k2=6, lambda_value=0.3, backend="auto", block_rows=None):
    """k-reciprocal re-ranked query x gallery distances, exact and sparse.

    Args:
        qf: ``[Q, D]`` and gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays);
            computed in float32.
        k1: size of the k-reciprocal neighbourhoods (``k1 + 1 <= Q + G``); k2: query-expansion
            neighbours (1 disables it); lambda_value: weight of the original distance, in [0, 1].
        backend: neighbour search, ``"auto"``, ``"torch"`` or ``"faiss"`` (see :mod:`ptl_ext.reid.knn`).
        block_rows: query rows per block of the result (default: about 2^24 entries).

    Returns:
        ``[Q, G]`` float32 tensor on the features' device.
    """
    qf, gf = _validate.feature_pair(qf, gf)
    out = torch.empty((qf.shape[0], gf.shape[0]), dtype=torch.float32, device=qf.device)
    return gather_blocks(rerank_blocks(qf, gf, k1, k2, lambda_value, backend, block_rows), out)
