"""Features in, ReID metrics out: distances (optionally query-expanded and re-ranked) streamed by query blocks."""

import torch
import torch.nn.functional as F

from .. import _checks
from . import _validate
from .config import AQEConfig, rerank_config
from .distance import METRICS, distance_blocks, gather_blocks
from .knn import resolve_backend
from .metrics import RankAccumulator
from .query_expansion import check_aqe_size, expand_blocks
from .rerank import rerank_blocks


def evaluate_features(
    qf,
    gf,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric="euclidean",
    rerank=False,
    normalize=False,
    max_rank=50,
    protocol="market",
    k1=None,
    k2=None,
    lambda_value=None,
    backend="auto",
    block_rows=None,
    num_draws=10,
    seed=0,
    aqe_k=AQEConfig.k,
    aqe_alpha=AQEConfig.alpha,
):
    """Evaluate query features against gallery features without holding the ``[Q, G]`` matrix.

    Args:
        qf: ``[Q, D]``, gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays), with
            any flip augmentation already applied by the caller. Features whose squared norms would
            overflow the dtype of the distances are refused (ValueError naming qf or gf).
        q_pids, q_camids: ``[Q]`` integer ids; g_pids, g_camids: ``[G]``.
        metric: ``"euclidean"`` (squared) or ``"cosine"``; re-ranking needs ``"euclidean"`` (it is
            defined on squared euclidean distances; use ``normalize=True`` for cosine-like ranking).
        rerank: k-reciprocal re-ranking: ``False``, ``True`` (the :class:`ptl_ext.reid.RerankConfig`
            defaults, replaced by any ``k1``, ``k2``, ``lambda_value`` given) or a ``RerankConfig``;
            ``backend`` picks its neighbour search.
        normalize: L2-normalise the features first.
        aqe_k, aqe_alpha: alpha query expansion (:func:`ptl_ext.reid.aqe`) of query and gallery features
            before ranking, with ``aqe_k`` neighbours (0: off) and weights ``cos ** aqe_alpha``.
        max_rank, protocol, num_draws, seed: as in :func:`ptl_ext.reid.evaluate_rank`.
        block_rows: query rows per block (default: about 2^24 distances per block).

    Returns:
        :class:`ptl_ext.reid.RankResult`.
    """
    _checks.positive_int(max_rank, "max_rank")
    backend = resolve_backend(backend)
    qf, gf, config, expansion = _checked_options(qf, gf, metric, rerank, k1, k2, lambda_value, aqe_k, aqe_alpha)
    device = qf.device
    q_pids = _validate.ids(q_pids, "q_pids", qf.shape[0], "query features", device)
    q_camids = _validate.ids(q_camids, "q_camids", qf.shape[0], "query features", device)
    g_pids = _validate.ids(g_pids, "g_pids", gf.shape[0], "gallery features", device)
    g_camids = _validate.ids(g_camids, "g_camids", gf.shape[0], "gallery features", device)
    acc = RankAccumulator(g_pids, g_camids, protocol, num_draws, seed)
    blocks = _retrieval_blocks(qf, gf, metric, config, expansion, normalize, backend, block_rows)
    for q0, dist in blocks:
        rows = slice(q0, q0 + dist.shape[0])
        acc.add(dist, q_pids[rows], q_camids[rows])
    return acc.result(max_rank)


def _checked_options(qf, gf, metric, rerank, k1, k2, lambda_value, aqe_k, aqe_alpha):
    """``(qf, gf, RerankConfig or None, AQEConfig)``: the retrieval options and the features checked once
    (features float32 when re-ranked; k1/k2 checked against Q + G)."""
    _checks.choice(metric, "metric", METRICS)
    config = rerank_config(rerank, k1, k2, lambda_value)
    if config is not None and metric != "euclidean":
        raise ValueError(
            "rerank=True works on squared euclidean distances: pass metric='euclidean' "
            "(with normalize=True for cosine-like ranking)"
        )
    expansion = AQEConfig(aqe_k, aqe_alpha)
    qf, gf = _validate.feature_pair(qf, gf, torch.float32 if config is not None else None)
    if config is not None:
        config.check_size(qf.shape[0] + gf.shape[0])
    return qf, gf, config, expansion


def _retrieval_blocks(qf, gf, metric, config, expansion, normalize, backend, block_rows):
    """``(q0, [Qb, G])`` distance blocks of checked features: expanded, normalised and re-ranked as asked."""
    if expansion.enabled:
        check_aqe_size(expansion, qf.shape[0] + gf.shape[0])
        qf, gf = expand_blocks(qf, gf, expansion, block_rows)
    elif normalize:
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
    if config is not None:
        return rerank_blocks(qf, gf, config, backend, block_rows)
    return distance_blocks(qf, gf, metric, block_rows)


def retrieval_distances(
    qf,
    gf,
    metric="euclidean",
    rerank=False,
    normalize=False,
    k1=None,
    k2=None,
    lambda_value=None,
    backend="auto",
    block_rows=None,
    aqe_k=AQEConfig.k,
    aqe_alpha=AQEConfig.alpha,
):
    """The whole ``[Q, G]`` distance matrix that :func:`evaluate_features` ranks with the same options
    (query expansion, normalisation, re-ranking), e.g. to draw ranked results.

    ``qf [Q, D]``, ``gf [G, D]``: float tensors or numpy arrays; returns a float tensor on their device
    (float32 when re-ranked).
    """
    qf, gf, config, expansion = _checked_options(qf, gf, metric, rerank, k1, k2, lambda_value, aqe_k, aqe_alpha)
    dtype = torch.float32 if config is not None else qf.dtype
    out = torch.empty(qf.shape[0], gf.shape[0], dtype=dtype, device=qf.device)
    return gather_blocks(
        _retrieval_blocks(qf, gf, metric, config, expansion, normalize, resolve_backend(backend), block_rows), out
    )
