"""Exact k-reciprocal re-ranking (Zhong et al., CVPR 2017), computed sparsely.

With d the squared euclidean distances over all Q+G features, each row divided by its maximum:
R(p, k1) holds the members of p's k1+1 nearest (self included) that have p among their own k1+1
nearest; it is expanded by R(c, round(k1/2)) of each member c whose overlap with R(p, k1) exceeds 2/3
of it; V_p = exp(-d(p, .)) over the expanded set, normalised to sum 1; query expansion replaces V_p by
the mean of V over p's k2 nearest; the Jaccard distance is 1 - m/(2 - m) with m = sum min(V_q, V_g);
final = (1 - lambda)·Jaccard + lambda·d. Neighbour ties break by index; "exact" means equal to the
dense algorithm in exact arithmetic (V is kept in float32 rather than the float16 of the original code).

Memory is O(N·k1) for the neighbour table and the sparse V, plus one block of query rows x gallery:
no N x N matrix is formed. The options and their defaults are :class:`ptl_ext.reid.RerankConfig`.
"""

import torch

from .. import _checks, ops
from . import _validate
from .config import RerankConfig
from .distance import gather_blocks, squared_norms
from .knn import knn_graph, resolve_backend
from .screen import SEARCH_FORMATS


def _gallery_index(v, num_query):
    """Inverted index of V's gallery rows: a :class:`ptl_ext.ops.CSR` over the N columns of V whose ``col``
    lists gallery rows (``v`` is V, a CSR with N rows of which the first ``num_query`` are queries)."""
    ptr, col, val = v
    n = ptr.numel() - 1
    start = ptr[num_query]
    g_col, g_val = col[start:], val[start:]
    g_row = torch.arange(n - num_query, device=ptr.device).repeat_interleave(ptr[num_query + 1 :] - ptr[num_query:-1])
    order = torch.argsort(g_col, stable=True)
    counts = torch.bincount(g_col, minlength=n)
    return ops.CSR(torch.cat([counts.new_zeros(1), counts.cumsum(0)]), g_row[order], g_val[order])


def rerank_block_entries(device):
    """Default entries of one re-ranked block on ``device``: the CPU Jaccard step accumulates one row at a time,
    the CUDA one a float64 accumulator of the whole block beside its float32 input and output, so its blocks
    are half as large (the same bytes)."""
    return _validate.BLOCK_ENTRIES // (2 if torch.device(device).type == "cuda" else 1)


def centred(x):
    """``(x - c, |x - c|^2)`` float32 for ``x [N, D]`` float32, with ``c`` its mean rounded to float32: squared
    distances do not change under translation, and a float32 GEMM of centred features errs in proportion to
    their spread instead of their distance from the origin."""
    xc = x - x.double().mean(0).to(x.dtype)
    return xc, squared_norms(xc)


def tile_rows(columns, device):
    """Query rows of one distance tile: a power of two, at most 256, within one re-ranked block's entries."""
    rows = max(1, min(256, rerank_block_entries(device) // max(1, columns)))
    return 1 << (rows.bit_length() - 1)


def tiled_distances(a, b, norm_a, norm_b, block_rows, tile):
    """Yield ``(q0, [rows, B])`` squared euclidean distances of the rows of ``a [A, D]`` to ``b [B, D]`` in
    blocks of ``block_rows`` rows, each computed in aligned tiles of ``tile`` rows (tile t holds rows
    ``t * tile ..``): a GEMM may round a row differently in matrices of different shapes, so every row is
    computed in the same tile, at the same place, whatever the blocks (one tile is cached across blocks)."""
    num_a = a.shape[0]
    cached = None
    for q0 in range(0, num_a, block_rows):
        q1 = min(num_a, q0 + block_rows)
        parts = []
        for t0 in range(q0 - q0 % tile, q1, tile):
            if cached is None or cached[0] != t0:
                t1 = min(num_a, t0 + tile)
                cached = (t0, ops.squared_euclidean(a[t0:t1], b, norm_a[t0:t1], norm_b))
            parts.append(cached[1][max(q0, t0) - t0 : min(q1, t0 + tile) - t0])
        yield q0, parts[0] if len(parts) == 1 else torch.cat(parts)


def rerank_blocks(qf, gf, config, backend="auto", block_rows=None, search="auto"):
    """Yield ``(q0, block)``: re-ranked distances ``[rows, G]`` float32 of query rows ``q0 ..``.

    ``qf [Q, D]`` and ``gf [G, D]`` are checked tensors (:func:`ptl_ext.reid._validate.feature_pair`),
    ``config`` a :class:`RerankConfig` checked against Q + G (:meth:`RerankConfig.check_size`) and
    ``backend`` resolved; other arguments as in :func:`re_ranking`. Only one block of query
    rows x gallery is held at a time. The first block's Jaccard step checks V and its inverted index;
    the later blocks trust them (no O(nnz) scans, no host synchronisation per block). Each row's result is
    the same bits whatever ``block_rows`` (the distances come from fixed tiles, :func:`tiled_distances`).
    """
    num_q, num_g = qf.shape[0], gf.shape[0]
    k1, k2 = config.k1, config.k2
    x = torch.cat([qf, gf]).float()
    _, nn_idx, rowmax = knn_graph(x, squared_norms(x), max(k1 + 1, k2), backend, search)
    v = ops.rerank_sparse_v(feats=x, rowmax=rowmax, nn_idx=nn_idx, k1=k1, k_half=round(k1 / 2))
    if k2 > 1:
        v = ops.rerank_query_expansion(v=v, nn_idx=nn_idx, k2=k2)
    del nn_idx
    inverse = _gallery_index(v, num_q)
    xc, norms = centred(x)
    del x
    rows = _validate.block_rows(block_rows, num_g, rerank_block_entries(xc.device))
    tiles = tiled_distances(xc[:num_q], xc[num_q:], norms[:num_q], norms[num_q:], rows, tile_rows(num_g, xc.device))
    for q0, dist in tiles:
        yield (
            q0,
            ops.rerank_jaccard(
                dist=dist,
                rowmax=rowmax[q0 : q0 + dist.shape[0]],
                v=v,
                row_start=q0,
                inverse=inverse,
                lambda_value=config.lambda_value,
                check_csr=q0 == 0,
            ),
        )


def re_ranking(
    qf,
    gf,
    k1=RerankConfig.k1,
    k2=RerankConfig.k2,
    lambda_value=RerankConfig.lambda_value,
    backend="auto",
    block_rows=None,
    search="auto",
):
    """k-reciprocal re-ranked query x gallery distances, exact and sparse.

    Args:
        qf: ``[Q, D]`` and gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays);
            computed in float32.
        k1, k2, lambda_value: as in :class:`RerankConfig` (defaults from it), with ``k1 + 1 <= Q + G``
            and ``k2 <= Q + G``.
        backend: neighbour search, ``"auto"``, ``"torch"`` or ``"faiss"`` (see :mod:`ptl_ext.reid.knn`).
        block_rows: query rows per block of the result (default: about 2^24 entries, 2^23 on CUDA); the
            result does not depend on it (bit for bit).
        search: GEMM format of the neighbour search (see :func:`ptl_ext.reid.knn.knn_graph`); every choice
            gives the same neighbours, the screened ones (``"auto"`` where the machine has a faster format)
            with a proven bound.

    Returns:
        ``[Q, G]`` float32 tensor on the features' device.
    """
    config = RerankConfig(k1, k2, lambda_value)
    backend = resolve_backend(backend)
    qf, gf = _validate.feature_pair(qf, gf, torch.float32)
    config.check_size(qf.shape[0] + gf.shape[0])
    _checks.choice(search, "search", SEARCH_FORMATS)
    out = torch.empty((qf.shape[0], gf.shape[0]), dtype=torch.float32, device=qf.device)
    return gather_blocks(rerank_blocks(qf, gf, config, backend, block_rows, search), out)
