"""Pure-PyTorch twins of every compiled op: the ground truth for tests and benchmarks.

Each twin takes the arguments of its wrapper in :mod:`ptl_ext.ops` and returns what it returns. The twins
of the distance, neighbour-search and ranking-statistics ops are the torch functions the CUDA path runs
(:mod:`ptl_ext._torch_kernels`, re-exported here); the others are written only here. :mod:`ptl_ext.ops`
falls back to these twins when the compiled extension (or a kernel for the device) is missing.
"""

import torch

from ._torch_kernels import CSR, pair_distances, reid_rank_stats, rerank_knn, squared_euclidean

__all__ = [
    "bconv_cell_update",
    "squared_euclidean",
    "rerank_knn",
    "rerank_sparse_v",
    "rerank_query_expansion",
    "rerank_jaccard",
    "reid_rank_stats",
]


def bconv_cell_update(gates, c_prev=None):
    """BConv-Cell gate/state update, eager PyTorch.

    Args:
        gates: ``[B, 4K, H, W]`` pre-activations, channel chunks in order i, f, o, g.
        c_prev: ``[B, K, H, W]`` previous latent state, or ``None`` for zeros.

    Returns:
        ``(y, c)``, each ``[B, K, H, W]`` with the dtype of ``gates``:
        ``c = σ(a_f)·c_prev + σ(a_i)·tanh(a_g)`` and ``y = σ(a_o)·tanh(c)``.
    """
    a_i, a_f, a_o, a_g = gates.chunk(4, dim=1)
    i, f, o, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o), torch.tanh(a_g)
    c = i * g if c_prev is None else f * c_prev + i * g
    y = o * torch.tanh(c)
    return y, c


# ------------------------------------------------- ReID ranking and k-reciprocal re-ranking


def _normalised(d, rowmax):
    """``d / rowmax`` where ``rowmax > 0``, else 0 (a row whose maximum is 0 holds only zeros)."""
    return torch.where(rowmax > 0, d / torch.where(rowmax > 0, rowmax, 1.0), 0.0)


def _ranges(starts, lengths):
    """Concatenation of ``arange(s, s + l)`` over the pairs of ``starts`` and ``lengths`` (int64)."""
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum()) if lengths.numel() else 0
    return torch.repeat_interleave(starts - offsets, lengths) + torch.arange(total, device=starts.device)


def _reciprocal(nn_idx, rows, k):
    """``(f, mask)``: ``f [R, k+1]`` the k+1 nearest of ``rows``; ``mask`` marks those that have the row
    among their own k+1 nearest (the k-reciprocal set R(row, k))."""
    f = nn_idx[rows, : k + 1]
    return f, (nn_idx[f, : k + 1] == rows[:, None, None]).any(-1)


def rerank_sparse_v(feats, rowmax, nn_idx, k1, k_half, chunk=2048):
    """V of k-reciprocal re-ranking as a CSR matrix.

    Row p holds ``exp(-d(p, j) / rowmax[p])`` (d summed in double from the float differences) normalised
    to sum 1 over the expanded k-reciprocal set of p: R(p, k1) plus R(c, k_half) of each c in R(p, k1)
    whose overlap with R(p, k1) exceeds 2/3 of it. ``nn_idx [N, K >= k1 + 1]`` is sorted by (distance, index).

    Returns:
        :class:`CSR` ``(ptr [N+1] int64, col [nnz] int64 ascending per row, val [nnz] float32)``.
    """
    n = nn_idx.shape[0]
    device = nn_idx.device
    counts, cols = [], []
    for r0 in range(0, n, chunk):
        rows = torch.arange(r0, min(n, r0 + chunk), device=device)
        f1, m1 = _reciprocal(nn_idx, rows, k1)
        fh, mh = _reciprocal(nn_idx, f1.reshape(-1), k_half)
        fh, mh = fh.view(len(rows), k1 + 1, k_half + 1), mh.view(len(rows), k1 + 1, k_half + 1)
        in_r = ((fh[..., None] == f1[:, None, None, :]) & m1[:, None, None, :]).any(-1)
        expand = m1 & (3 * (in_r & mh).sum(-1) > 2 * mh.sum(-1))
        cand = torch.cat([torch.where(m1, f1, n), torch.where(expand[..., None] & mh, fh, n).flatten(1)], 1)
        cand = cand.sort(1).values
        first = torch.ones_like(cand[:, :1], dtype=torch.bool)
        keep = (cand < n) & torch.cat([first, cand[:, 1:] != cand[:, :-1]], 1)
        counts.append(keep.sum(1))
        cols.append(cand[keep])
    counts, col = torch.cat(counts), torch.cat(cols)
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    row = torch.arange(n, device=device).repeat_interleave(counts)
    w = torch.exp(-_normalised(pair_distances(feats, row, col).float(), rowmax[row]))
    sums = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, row, w.double())
    return CSR(ptr, col, (w.double() / sums[row]).float())


def rerank_query_expansion(v, nn_idx, k2):
    """Query expansion of V: row p becomes the mean of the rows of ``v`` (a :class:`CSR`) of its ``k2`` nearest.

    Returns the :class:`CSR` ``(ptr [N+1] int64, col [nnz] int64 ascending per row, val [nnz] float32)``.
    """
    ptr, col, val = v
    n = nn_idx.shape[0]
    src = nn_idx[:, :k2].reshape(-1)
    lengths = ptr[src + 1] - ptr[src]
    entries = _ranges(ptr[src], lengths)
    out_row = torch.arange(n, device=ptr.device).repeat_interleave(k2).repeat_interleave(lengths)
    keys, inverse = torch.unique(out_row * n + col[entries], return_inverse=True)
    sums = torch.zeros(keys.numel(), dtype=torch.float64, device=ptr.device)
    sums.index_add_(0, inverse, val[entries].double())
    counts = torch.bincount(keys // n, minlength=n)
    return CSR(torch.cat([counts.new_zeros(1), counts.cumsum(0)]), keys % n, (sums / k2).float())


def rerank_jaccard(dist, rowmax, v, row_start, inverse, lambda_value):
    """Final re-ranked distances of a block of query rows.

    Args:
        dist: ``[Qb, G]`` float32 squared distances of V rows ``row_start ..`` to the gallery;
            rowmax: ``[Qb]`` their rows' maximum squared distance over all N features.
        v: query-expanded V, a :class:`CSR` with N rows; inverse: its gallery rows by column (a
            :class:`CSR` over the N columns whose ``col`` lists gallery rows).
        row_start: V row of the block's first query; lambda_value: weight of the original distance.

    Returns:
        ``[Qb, G]`` float32 ``(1 - λ)·(1 - m/(2 - m)) + λ·dist/rowmax`` with ``m = Σ min(V_q, V_g)``.
    """
    (ptr, col, val), (inv_ptr, inv_row, inv_val) = v, inverse
    qb, g = dist.shape
    rows = torch.arange(row_start, row_start + qb, device=dist.device)
    lengths = ptr[rows + 1] - ptr[rows]
    entries = _ranges(ptr[rows], lengths)
    c = col[entries]
    post_len = inv_ptr[c + 1] - inv_ptr[c]
    post = _ranges(inv_ptr[c], post_len)
    pair_q = torch.arange(qb, device=dist.device).repeat_interleave(lengths).repeat_interleave(post_len)
    mins = torch.minimum(val[entries].repeat_interleave(post_len), inv_val[post]).double()
    m = torch.zeros(qb * g, dtype=torch.float64, device=dist.device).index_add_(0, pair_q * g + inv_row[post], mins)
    m = m.view(qb, g).float()
    return (1.0 - lambda_value) * (1.0 - m / (2.0 - m)) + lambda_value * _normalised(dist, rowmax[:, None])
