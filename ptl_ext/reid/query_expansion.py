"""Alpha query expansion (αQE, Radenović et al.; the ``aqe`` step of fast-reid), computed by row blocks.

Every feature, query and gallery alike, is replaced by the weighted sum of the L2-normalised features of
its ``k`` most cosine-similar features among all Q + G (itself included), with weights
``max(cos, 0) ** alpha``, and normalised again. Neighbours that agree with a feature pull it towards
their identity's centre, so a query finds gallery items its first neighbours share.
"""

import torch
import torch.nn.functional as F

from . import _validate
from .config import AQEConfig


def expand_blocks(qf, gf, config, block_rows=None):
    """``(qf', gf')``: αQE of checked features ``qf [Q, D]``, ``gf [G, D]`` with an enabled :class:`AQEConfig`
    (``config.k <= Q + G``). Holds one block of rows x (Q + G) similarities at a time."""
    x = F.normalize(torch.cat([qf, gf]), dim=1)
    n = x.shape[0]
    out = torch.empty_like(x)
    rows = _validate.block_rows(block_rows, n + config.k * x.shape[1])  # similarities + gathered neighbours
    for r0 in range(0, n, rows):
        sims, idx = torch.mm(x[r0 : r0 + rows], x.T).topk(config.k, dim=1)
        weights = sims.clamp_(min=0.0).pow_(config.alpha)
        out[r0 : r0 + rows] = torch.bmm(weights[:, None, :], x[idx]).squeeze(1)
    out = F.normalize(out, dim=1)
    return out[: qf.shape[0]], out[qf.shape[0] :]


def aqe(qf, gf, k, alpha=AQEConfig.alpha, block_rows=None):
    """Alpha query expansion of query and gallery features (see the module docstring).

    Args:
        qf: ``[Q, D]`` and gf: ``[G, D]`` floating features (tensors on CPU or CUDA, or numpy arrays).
        k: neighbours averaged into each feature, itself included (``1 <= k <= Q + G``).
        alpha: exponent of the cosine-similarity weights (>= 0; 0 gives a plain mean).
        block_rows: rows per block (default: about 2^24 similarities and gathered entries per block).

    Returns:
        ``(qf' [Q, D], gf' [G, D])`` L2-normalised, float32 (float64 for float64 features), on the
        features' device.
    """
    qf, gf = _validate.feature_pair(qf, gf)
    config = AQEConfig(k, alpha)
    check_aqe_size(config, qf.shape[0] + gf.shape[0])
    return expand_blocks(qf, gf, config, block_rows)


def check_aqe_size(config, total):
    """Raise a ValueError unless ``1 <= config.k <= total`` (``total = Q + G``)."""
    if not 1 <= config.k <= total:
        raise ValueError(f"aqe_k must be in [1, Q + G] = [1, {total}] to expand, got {config.k}")
