"""Pure-PyTorch twins of every compiled op: the ground truth for tests and benchmarks."""

import contextlib

import torch


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


# ---------------------------------------------------------------- ReID ranking and k-reciprocal re-ranking (SPEC section 5)

ZERO_TOL = 2.0**-17  # the kZeroTol of csrc/rerank/rerank_math.h
KNN_EXTRA = 8  # the kKnnExtra of csrc/rerank/rerank_math.h


def snap_zero(d, total):
    """Set squared distances ``d <= ZERO_TOL * total`` (``total = |a|² + |b|²``) to exactly 0.

    Such values are within float32 rounding of zero, so duplicate features tie exactly and their
    ties break by index. In place on ``d``; returns ``d``.
    """
    return d.masked_fill_(d <= ZERO_TOL * total, 0.0)


@contextlib.contextmanager
def ieee_float32_matmul(device):
    """Within the block, float32 matmuls on a CUDA ``device`` run in IEEE float32, not TF32, whatever
    the caller's TF32 setting (restored on exit). Nothing changes for other devices."""
    if torch.device(device).type != "cuda":
        yield
        return
    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):  # the setting cuBLAS reads (torch >= 2.9)
        saved = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = saved
    else:
        saved = matmul.allow_tf32
        matmul.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32 = saved


def squared_euclidean(a, b, norm_a, norm_b):
    """Squared euclidean distances ``[A, B]`` between the rows of ``a [A, D]`` and ``b [B, D]``.

    ``norm_a [A]`` and ``norm_b [B]`` are the squared row norms; float32 or float64. Values within
    rounding of zero are exactly 0 (see :func:`snap_zero`). On CUDA the GEMM runs in IEEE float32
    even where TF32 is enabled (its 10-bit mantissa would reorder neighbours and shift row maxima).
    """
    with ieee_float32_matmul(a.device):
        d = torch.addmm(norm_b[None, :], a, b.T, alpha=-2.0)
    d.add_(norm_a[:, None])
    return snap_zero(d, norm_a[:, None] + norm_b[None, :])


def _normalised(d, rowmax):
    """``d / rowmax`` where ``rowmax > 0``, else 0 (a row whose maximum is 0 holds only zeros)."""
    return torch.where(rowmax > 0, d / torch.where(rowmax > 0, rowmax, 1.0), 0.0)


def _ranges(starts, lengths):
    """Concatenation of ``arange(s, s + l)`` over the pairs of ``starts`` and ``lengths`` (int64)."""
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum()) if lengths.numel() else 0
    return torch.repeat_interleave(starts - offsets, lengths) + torch.arange(total, device=starts.device)


def pair_distances(feats, rows, cols):
    """Squared euclidean distances ``[...]`` float64 between ``feats[rows]`` and ``feats[cols]`` (index
    tensors of one shape), summed in double from float differences: accurate to ~1e-15 relative and
    exactly 0 for identical features. Works in chunks of about 2^24 values."""
    rows, cols = torch.broadcast_tensors(rows, cols)
    flat_r, flat_c = rows.reshape(-1), cols.reshape(-1)
    out = torch.empty(flat_r.numel(), dtype=torch.float64, device=feats.device)
    step = max(1, (1 << 24) // max(1, feats.shape[1]))
    for s in range(0, flat_r.numel(), step):
        diff = (feats[flat_r[s : s + step]] - feats[flat_c[s : s + step]]).double()
        out[s : s + step] = diff.mul_(diff).sum(1)
    return out.view(rows.shape)


def refine_knn(feats, cand, k):
    """Order neighbour candidates exactly and keep the first ``k``.

    ``cand [N, C]`` int64 indices into ``feats [N, D]`` float32 are ordered by :func:`pair_distances`
    (not by the matmul distances that found them, which lose ~1e-6 of the squared norms to cancellation
    and round identical features differently), ties by index. Returns ``(dist [N, k] float32,
    idx [N, k] int64)``.
    """
    cand = cand.sort(1).values
    d = pair_distances(feats, torch.arange(feats.shape[0], device=feats.device)[:, None], cand)
    d, order = d.sort(dim=1, stable=True)
    return d[:, :k].float(), cand.gather(1, order[:, :k])


def rerank_knn(feats, norms, k, block):
    """The ``k`` nearest features of every feature, and each row's maximum distance.

    Blocked matmul + top-k of ``k + KNN_EXTRA`` candidates, then :func:`refine_knn`.

    Args:
        feats: ``[N, D]`` float32 features; norms: ``[N]`` their squared norms.
        k: neighbours per row (self included), ``1 <= k <= N``; block: rows per matmul block (fewer
            when needed to keep a block within 2^24 distances).

    Returns:
        ``(dist [N, k] float32, idx [N, k] int64, rowmax [N] float32)``: squared distances and
        indices sorted by (distance, index), and the largest squared distance of each row.
    """
    n = feats.shape[0]
    kc = min(n, k + KNN_EXTRA)
    cand = torch.empty((n, kc), dtype=torch.int64, device=feats.device)
    rowmax = feats.new_empty((n,))
    block = max(1, min(block, (1 << 24) // n))
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        d = squared_euclidean(feats[r0:r1], feats, norms[r0:r1], norms)
        rowmax[r0:r1] = d.amax(1)
        cand[r0:r1] = d.topk(kc, dim=1, largest=False, sorted=False).indices
    return (*refine_knn(feats, cand, k), rowmax)


def _reciprocal(nn_idx, rows, k):
    """``(f, mask)``: ``f [R, k+1]`` the k+1 nearest of ``rows``; ``mask`` marks those that have the row
    among their own k+1 nearest (the k-reciprocal set R(row, k))."""
    f = nn_idx[rows, : k + 1]
    return f, (nn_idx[f, : k + 1] == rows[:, None, None]).any(-1)


def rerank_sparse_v(feats, rowmax, nn_idx, k1, k_half, chunk=2048):
    """V of k-reciprocal re-ranking as a CSR matrix.

    Row p holds ``exp(-d(p, j) / rowmax[p])`` (d from :func:`pair_distances`) normalised to sum 1 over the expanded k-reciprocal set
    of p: R(p, k1) plus R(c, k_half) of each c in R(p, k1) whose overlap with R(p, k1) exceeds 2/3 of
    it. ``nn_idx [N, K >= k1 + 1]`` is sorted by (distance, index).

    Returns:
        ``(ptr [N+1] int64, col [nnz] int64 ascending per row, val [nnz] float32)``.
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
    return ptr, col, (w.double() / sums[row]).float()


def rerank_query_expansion(ptr, col, val, nn_idx, k2):
    """Query expansion of V: row p becomes the mean of the CSR rows of its ``k2`` nearest.

    Returns the CSR ``(ptr [N+1] int64, col [nnz] int64 ascending per row, val [nnz] float32)``.
    """
    n = nn_idx.shape[0]
    src = nn_idx[:, :k2].reshape(-1)
    lengths = ptr[src + 1] - ptr[src]
    entries = _ranges(ptr[src], lengths)
    out_row = torch.arange(n, device=ptr.device).repeat_interleave(k2).repeat_interleave(lengths)
    keys, inverse = torch.unique(out_row * n + col[entries], return_inverse=True)
    sums = torch.zeros(keys.numel(), dtype=torch.float64, device=ptr.device).index_add_(0, inverse, val[entries].double())
    counts = torch.bincount(keys // n, minlength=n)
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)]), keys % n, (sums / k2).float()


def rerank_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
    """Final re-ranked distances of a block of query rows.

    Args:
        dist: ``[Qb, G]`` float32 squared distances of V rows ``row_start ..`` to the gallery;
            rowmax: ``[Qb]`` their rows' maximum squared distance over all N features.
        ptr, col, val: query-expanded V (CSR, N rows); inv_ptr, inv_row, inv_val: its gallery rows by
            column (CSR over the N columns listing gallery row and value).
        lambda_value: weight of the original distance.

    Returns:
        ``[Qb, G]`` float32 ``(1 - λ)·(1 - m/(2 - m)) + λ·dist/rowmax`` with ``m = Σ min(V_q, V_g)``.
    """
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


def reid_rank_stats(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per-query ranking statistics of the Market/Duke/MSMT17 protocol.

    Gallery items with the query's pid and camera are dropped; the matches are the remaining items of
    the query's pid; the order is by (distance, gallery index).

    Args:
        distmat: ``[Q, G]`` float32/float64; q_pids, q_camids: ``[Q]`` int64; g_pids, g_camids: ``[G]`` int64.

    Returns:
        ``(first [Q] int64, ap [Q] float64, inp [Q] float64)``: rank of the first match (1-based, 0 when
        the query has no match), average precision, and matches / rank of the last match.
    """
    order = torch.argsort(distmat, dim=1, stable=True)
    same_pid = g_pids[order] == q_pids[:, None]
    junk = same_pid & (g_camids[order] == q_camids[:, None])
    match = same_pid & ~junk
    rank = torch.cumsum(~junk, 1)
    hits = torch.cumsum(match, 1)
    num = match.sum(1)
    ap = torch.where(match, hits.double() / rank.double(), 0.0).sum(1) / num.clamp(min=1)
    first = torch.where(match, rank, distmat.shape[1] + 1).amin(1) if distmat.shape[1] else num
    last = torch.where(match, rank, 0).amax(1) if distmat.shape[1] else num
    has = num > 0
    return torch.where(has, first, 0), ap, torch.where(has, num.double() / last.clamp(min=1), 0.0)
