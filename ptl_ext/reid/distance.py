"""Query x gallery distance matrices, computed by query blocks."""

import torch
import torch.nn.functional as F

from .. import _checks, ops
from . import _validate
from .config import METRICS


def squared_norms(x):
    """``[N]`` squared L2 norms of the rows of ``x [N, D]`` (one pass, no ``[N, D]`` temporary)."""
    return torch.linalg.vector_norm(x, dim=1).square_()


def distance_blocks(qf, gf, metric="euclidean", block_rows=None):
    """Yield ``(q0, block)``: distances ``[rows, G]`` of query rows ``q0 ..`` to every gallery feature.

    ``qf [Q, D]`` and ``gf [G, D]`` are checked tensors of one float dtype and device, ``metric`` one of
    :data:`METRICS` (checked by the caller). euclidean: squared distance (values within float rounding of
    zero are 0); cosine: ``1 - cos``. Only one block of ``block_rows`` rows (default: about 2^24 entries)
    is held at a time.
    """
    rows = _validate.block_rows(block_rows, gf.shape[0])
    if metric == "cosine":
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
        for q0 in range(0, qf.shape[0], rows):
            yield q0, torch.mm(qf[q0 : q0 + rows], gf.T).neg_().add_(1.0)
        return
    q_norms, g_norms = squared_norms(qf), squared_norms(gf)
    for q0 in range(0, qf.shape[0], rows):
        yield q0, ops.squared_euclidean(qf[q0 : q0 + rows], gf, q_norms[q0 : q0 + rows], g_norms)


def compute_distance(qf, gf, metric="euclidean", block_rows=None):
    """Distance matrix between query and gallery features.

    Args:
        qf: ``[Q, D]`` and gf: ``[G, D]`` floating tensors (or numpy arrays) on one device; float16 and
            bfloat16 are computed in float32.
        metric: ``"euclidean"`` (squared euclidean; values within float rounding of zero are exactly 0)
            or ``"cosine"`` (``1 - cos``; a zero vector is at distance 1 from everything).
        block_rows: query rows per block of work (default: about 2^24 entries per block).

    Returns:
        ``[Q, G]`` tensor on the features' device, float32 (float64 for float64 features).

    Features whose squared norms would overflow the dtype (above a quarter of its largest value) are
    refused with a ValueError naming qf or gf.
    """
    _checks.choice(metric, "metric", METRICS)
    qf, gf = _validate.feature_pair(qf, gf)
    _checks.allocation(
        qf.shape[0] * gf.shape[0] * qf.element_size(), f"a {qf.shape[0]} x {gf.shape[0]} distance matrix"
    )
    return gather_blocks(distance_blocks(qf, gf, metric, block_rows), qf.new_empty((qf.shape[0], gf.shape[0])))


def gather_blocks(blocks, out):
    """Write the ``(q0, block)`` pairs of a block generator into the rows ``q0 ..`` of ``out [Q, G]``."""
    for q0, block in blocks:
        out[q0 : q0 + block.shape[0]] = block
    return out
