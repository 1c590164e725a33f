"""Torch implementations the re-ranking and ranking ops run on at run time (private).

:mod:`ptl_ext.ops` uses them where no compiled kernel applies (the neighbour search and the ranking
statistics on CUDA, float64 distances) and :mod:`ptl_ext.reid.knn` orders faiss candidates with
:func:`refine_knn`. :mod:`ptl_ext.reference` re-exports the op-shaped ones as the twins of the CPU kernels.
The constants equal those of ``csrc/rerank/rerank_math.h`` (a test compares them).
"""

import contextlib
from typing import NamedTuple

import torch

ZERO_TOL = 2.0**-17  # kZeroTol
KNN_EXTRA = 8  # kKnnExtra
BLOCK_ENTRIES = 1 << 24  # entries of one block of work (distances, pair differences); the one home of it


class CSR(NamedTuple):
    """A sparse matrix in compressed rows: ``ptr [rows + 1]`` int64, ``col [nnz]`` int64 (ascending within
    a row), ``val [nnz]`` float32. The inverted index of re-ranking is a CSR over V's columns whose
    ``col`` holds gallery rows."""

    ptr: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor


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
        saved, matmul.fp32_precision = matmul.fp32_precision, "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = saved
    else:
        saved, matmul.allow_tf32 = matmul.allow_tf32, False
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


def pair_distances(feats, rows, cols):
    """Squared euclidean distances ``[...]`` float64 between ``feats[rows]`` and ``feats[cols]`` (index
    tensors of one shape), summed in double from float differences: accurate to ~1e-15 relative and
    exactly 0 for identical features. Works in chunks of about 2^24 values."""
    rows, cols = torch.broadcast_tensors(rows, cols)
    flat_r, flat_c = rows.reshape(-1), cols.reshape(-1)
    out = torch.empty(flat_r.numel(), dtype=torch.float64, device=feats.device)
    step = max(1, BLOCK_ENTRIES // max(1, feats.shape[1]))
    for s in range(0, flat_r.numel(), step):
        diff = feats[flat_r[s : s + step]].double() - feats[flat_c[s : s + step]].double()  # exact in double
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


def rerank_screen_select(est, width, far_width):
    """The ``width`` smallest entries of each row of ``est [R, N]`` (float32, bfloat16 or float16), ascending,
    and the ``far_width`` largest, descending, as float32 with their column indices: ``(small, small_idx,
    large, large_idx)``. The twin of the CPU kernel ``ptl_ext::rerank_screen_select`` (which breaks ties by
    index; ``topk`` may not)."""
    small, small_idx = est.topk(width, dim=1, largest=False, sorted=True)
    large, large_idx = est.topk(far_width, dim=1, largest=True, sorted=True)
    return small.float(), small_idx, large.float(), large_idx


def rerank_refine(feats, rows, cand, count, k):
    """Exact distances of candidate lists, sorted; the twin of the CPU kernel ``ptl_ext::rerank_refine``.

    Args:
        feats: ``[N, D]`` float32 features; rows: ``[R]`` int64 feature indices; cand: ``[R, C]`` int64
            candidate indices of each row, of which the first ``count [R]`` (int64, ``k <= count <= C``) count.
        k: entries kept per row (``1 <= k <= C``).

    Returns:
        ``(dist [R, k] float32, idx [R, k] int64, far [R] float32)``: the ``k`` first candidates by
        (:func:`pair_distances`, index), and the largest pair distance among each row's candidates.
    """
    valid = torch.arange(cand.shape[1], device=cand.device)[None, :] < count[:, None]
    d = pair_distances(feats, rows[:, None], cand.clamp(0, feats.shape[0] - 1))
    far = torch.where(valid, d, 0.0).amax(1)
    d = torch.where(valid, d, torch.inf)
    key = torch.where(valid, cand, feats.shape[0])
    order = key.argsort(dim=1, stable=True)  # by index, then stably by distance
    d, key = d.gather(1, order), key.gather(1, order)
    d, order = d.sort(dim=1, stable=True)
    return d[:, :k].float(), key.gather(1, order[:, :k]), far.float()


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
    block = max(1, min(block, BLOCK_ENTRIES // n))
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        d = squared_euclidean(feats[r0:r1], feats, norms[r0:r1], norms)
        rowmax[r0:r1] = d.amax(1)
        cand[r0:r1] = d.topk(kc, dim=1, largest=False, sorted=False).indices
    return (*refine_knn(feats, cand, k), rowmax)


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
