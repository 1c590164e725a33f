"""Features in, ReID metrics out: distances (optionally re-ranked) streamed by query blocks."""

import torch.nn.functional as F

from . import _validate
from .distance import METRICS, distance_blocks
from .metrics import RankAccumulator
from .rerank import rerank_blocks


def evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="euclidean", rerank=False,
                      normalize=False, max_rank=50, protocol="market", k1=20, k2=6, lambda_value=0.3,
                      backend="auto", block_rows=None, num_draws=10, seed=0):
    """Evaluate query features against gallery features without holding the ``[Q, G]`` matrix.

    Args:
        qf: ``[Q, D]``, gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays), with
            any flip augmentation already applied by the caller.
        q_pids, q_camids: ``[Q]`` integer ids; g_pids, g_camids: ``[G]``.
        metric: ``"euclidean"`` (squared) or ``"cosine"``; re-ranking needs ``"euclidean"`` (it is
            defined on squared euclidean distances; use ``normalize=True`` for cosine-like ranking).
        rerank: apply k-reciprocal re-ranking with ``k1``, ``k2``, ``lambda_value``, ``backend``.
        normalize: L2-normalise the features first.
        max_rank, protocol, num_draws, seed: as in :func:`ptl_ext.reid.evaluate_rank`.
        block_rows: query rows per block (default: about 2^24 distances per block).

    Returns:
        :class:`ptl_ext.reid.RankResult`.
    """
    qf, gf = _validate.feature_pair(qf, gf)
    device = qf.device
    q_pids = _validate.ids(q_pids, "q_pids", qf.shape[0], "query features", device)
    q_camids = _validate.ids(q_camids, "q_camids", qf.shape[0], "query features", device)
    g_pids = _validate.ids(g_pids, "g_pids", gf.shape[0], "gallery features", device)
    g_camids = _validate.ids(g_camids, "g_camids", gf.shape[0], "gallery features", device)
    _validate.choice(metric, "metric", METRICS)
    if rerank and metric != "euclidean":
        raise ValueError("rerank=True works on squared euclidean distances: pass metric='euclidean' "
                         "(with normalize=True for cosine-like ranking)")
    acc = RankAccumulator(g_pids, g_camids, protocol, num_draws, seed)
    _validate.positive_int(max_rank, "max_rank")
    if normalize:
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
    if rerank:
        blocks = rerank_blocks(qf, gf, k1, k2, lambda_value, backend, block_rows)
    else:
        blocks = distance_blocks(qf, gf, metric, block_rows)
    for q0, dist in blocks:
        rows = slice(q0, q0 + dist.shape[0])
        acc.add(dist, q_pids[rows], q_camids[rows])
    return acc.result(max_rank)
