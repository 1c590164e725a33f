"""Dense textbook implementations of the ReID protocol and of k-reciprocal re-ranking (numpy).

Written to follow the published algorithms line by line, with N x N dense matrices: the ground truth
for tests (small sizes, float64, exact distances) and the dense baseline of benchmarks/bench_eval.py.
Ties in every ordering break by index (stable argsort). Loaded by path (it is not a test module).
"""

import numpy as np


def evaluate_market(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """Per-query loop of the common open-source Market-1501 evaluator: ``(cmc, mAP, mINP, num_valid)``."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    order = np.argsort(distmat, axis=1, kind="stable")
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(num_q):
        g = order[q]
        keep = ~((g_pids[g] == q_pids[q]) & (g_camids[g] == q_camids[q]))
        raw = (g_pids[g] == q_pids[q])[keep].astype(np.float64)
        if not raw.any():
            continue
        cmc = raw.cumsum()
        last = np.max(np.where(raw == 1)[0])
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        cmc = np.concatenate([cmc, np.ones(max(0, max_rank - len(cmc)))])  # found within the kept items
        all_cmc.append(cmc[:max_rank])
        precision = raw.cumsum() / (np.arange(len(raw)) + 1.0)
        all_ap.append((precision * raw).sum() / raw.sum())
    if not all_cmc:
        raise ValueError("no valid query")
    return np.mean(all_cmc, 0), float(np.mean(all_ap)), float(np.mean(all_inp)), len(all_cmc)


def squared_distances(x, exact=True):
    """All-pairs squared euclidean distances: explicit differences in float64 (exact=True) or the
    float32 GEMM formula of the original code (exact=False)."""
    if exact:
        x = x.astype(np.float64)
        return ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    x = x.astype(np.float32)
    sq = (x * x).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)


def re_ranking(qf, gf, k1, k2, lambda_value, exact=True):
    """Dense k-reciprocal re-ranking (Zhong et al. 2017) returning the ``[Q, G]`` final distances."""
    x = np.concatenate([qf, gf])
    num_q, n = len(qf), len(x)
    dist = squared_distances(x, exact)
    dist = dist / dist.max(axis=1, keepdims=True)
    rank = np.argsort(dist, axis=1, kind="stable")
    v = np.zeros((n, n), dtype=dist.dtype)
    k_half = int(np.around(k1 / 2))
    for i in range(n):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        recip = forward[np.where(backward == i)[0]]
        expansion = recip
        for c in recip:
            c_forward = rank[c, : k_half + 1]
            c_backward = rank[c_forward, : k_half + 1]
            c_recip = c_forward[np.where(c_backward == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        weight = np.exp(-dist[i, expansion])
        v[i, expansion] = weight / np.sum(weight)
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    inverted = [np.where(v[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros((num_q, n), dtype=dist.dtype)
    for i in range(num_q):
        overlap = np.zeros(n, dtype=dist.dtype)
        for j in np.where(v[i] != 0)[0]:
            overlap[inverted[j]] += np.minimum(v[i, j], v[inverted[j], j])
        jaccard[i] = 1 - overlap / (2 - overlap)
    final = jaccard * (1 - lambda_value) + dist[:num_q] * lambda_value
    return final[:, num_q:]
