"""Features in, ReID metrics out: distances (optionally query-expanded and re-ranked) streamed by query blocks."""

import torch
import torch.nn.functional as F

from . import _validate
from .config import EvalConfig
from .distance import distance_blocks, gather_blocks
from .knn import resolve_backend
from .metrics import RankAccumulator
from .query_expansion import check_aqe_size, expand_blocks
from .rerank import rerank_blocks


def evaluate_features(qf, gf, q_pids, g_pids, q_camids, g_camids, config=None, **options):
    """Evaluate query features against gallery features without holding the ``[Q, G]`` matrix.

    Args:
        qf: ``[Q, D]``, gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays), with
            any flip augmentation already applied by the caller. Features whose squared norms would
            overflow the dtype of the distances are refused (ValueError naming qf or gf).
        q_pids, q_camids: ``[Q]`` integer ids; g_pids, g_camids: ``[G]``.
        config: an :class:`ptl_ext.reid.EvalConfig`, or ``None`` to build one from ``options``.
        options: the keywords of :meth:`ptl_ext.reid.EvalConfig.from_options` (not with ``config``):
            ``metric``, ``rerank`` (``False``, ``True`` with ``k1``, ``k2``, ``lambda_value``, or a
            :class:`ptl_ext.reid.RerankConfig`), ``normalize``, ``aqe_k``, ``aqe_alpha``, ``max_rank``,
            ``protocol``, ``num_draws``, ``seed``, ``backend``, ``search``, ``block_rows``.

    Returns:
        :class:`ptl_ext.reid.RankResult`.
    """
    config = _config(config, options)
    qf, gf = _checked_features(qf, gf, config)
    device = qf.device
    q_pids = _validate.ids(q_pids, "q_pids", qf.shape[0], "query features", device)
    q_camids = _validate.ids(q_camids, "q_camids", qf.shape[0], "query features", device)
    g_pids = _validate.ids(g_pids, "g_pids", gf.shape[0], "gallery features", device)
    g_camids = _validate.ids(g_camids, "g_camids", gf.shape[0], "gallery features", device)
    acc = RankAccumulator(g_pids, g_camids, config.protocol, config.num_draws, config.seed)
    for q0, dist in _retrieval_blocks(qf, gf, config):
        rows = slice(q0, q0 + dist.shape[0])
        acc.add(dist, q_pids[rows], q_camids[rows])
    return acc.result(config.max_rank)


def _config(config, options):
    """``config`` (then ``options`` must be empty) or the :class:`EvalConfig` of ``options``."""
    if config is None:
        return EvalConfig.from_options(**options)
    if options:
        raise ValueError(f"pass {', '.join(sorted(options))} inside the EvalConfig given as config, not beside it")
    if not isinstance(config, EvalConfig):
        raise TypeError(f"config must be an EvalConfig, got {type(config).__name__}")
    return config


def _checked_features(qf, gf, config):
    """``(qf, gf)`` checked once (float32 when re-ranked; re-ranking's k1/k2 and the backend checked against
    Q + G and the installed packages)."""
    resolve_backend(config.backend)
    qf, gf = _validate.feature_pair(qf, gf, torch.float32 if config.rerank is not None else None)
    if config.rerank is not None:
        config.rerank.check_size(qf.shape[0] + gf.shape[0])
    if config.aqe.enabled:
        check_aqe_size(config.aqe, qf.shape[0] + gf.shape[0])
    return qf, gf


def _retrieval_blocks(qf, gf, config):
    """``(q0, [Qb, G])`` distance blocks of checked features: expanded, normalised and re-ranked as asked."""
    if config.aqe.enabled:
        qf, gf = expand_blocks(qf, gf, config.aqe, config.block_rows)
    elif config.normalize:
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
    if config.rerank is not None:
        backend = resolve_backend(config.backend)
        return rerank_blocks(qf, gf, config.rerank, backend, config.block_rows, config.search)
    return distance_blocks(qf, gf, config.metric, config.block_rows)


def retrieval_distances(qf, gf, config=None, **options):
    """The whole ``[Q, G]`` distance matrix that :func:`evaluate_features` ranks with the same options
    (query expansion, normalisation, re-ranking), e.g. to draw ranked results.

    ``qf [Q, D]``, ``gf [G, D]``: float tensors or numpy arrays; ``config``/``options`` as in
    :func:`evaluate_features` (the ranking ones, ``max_rank``, ``protocol``, ``num_draws``, ``seed``, unused).
    Returns a float tensor on their device (float32 when re-ranked).
    """
    config = _config(config, options)
    qf, gf = _checked_features(qf, gf, config)
    dtype = torch.float32 if config.rerank is not None else qf.dtype
    out = torch.empty(qf.shape[0], gf.shape[0], dtype=dtype, device=qf.device)
    return gather_blocks(_retrieval_blocks(qf, gf, config), out)
