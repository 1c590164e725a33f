"""CMC, mAP and mINP of the ReID protocols, streamed over query blocks of a distance matrix.

Market/Duke/MSMT17 protocol: per query, gallery items with the query's pid and camera are dropped;
queries left without a match are skipped (``num_valid`` counts the rest); the order is by distance, ties
by gallery index; CMC by the first match, AP non-interpolated, INP = matches / rank of the last match.
CUHK03 protocol: the same AP and INP; CMC single-gallery-shot (one random kept item per gallery
identity), averaged over ``num_draws`` seeded draws.
"""

from dataclasses import dataclass

import numpy as np
import torch

from .. import _checks, ops
from . import _validate
from .config import PROTOCOLS


@dataclass(frozen=True)
class RankResult:
    """Evaluation result: ``cmc [max_rank]`` float64 fractions (rank-k accuracy at ``cmc[k-1]``), ``mAP``
    and ``mINP`` fractions, ``num_valid`` queries evaluated out of ``num_query``."""

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    num_query: int


class RankAccumulator:
    """Accumulates query blocks of a ``[Q, G]`` distance matrix into a :class:`RankResult`.

    Args:
        g_pids, g_camids: ``[G]`` int64 tensors on the device of the distance blocks.
        protocol: ``"market"`` or ``"cuhk03"``; num_draws, seed: the CUHK03 single-shot draws.
    """

    def __init__(self, g_pids, g_camids, protocol="market", num_draws=10, seed=0):
        self.g_pids, self.g_camids = g_pids, g_camids
        self.protocol = _checks.choice(protocol, "protocol", PROTOCOLS)
        self.first, self.ap, self.inp, self.single_shot = [], [], [], []
        self.num_query = 0
        if self.protocol == "cuhk03":
            self._draws = self._single_shot_draws(_checks.positive_int(num_draws, "num_draws"), seed)

    def _single_shot_draws(self, num_draws, seed):
        # Draw r gives every gallery item a random priority; each identity is represented by its
        # highest-priority kept item (for the query's own identity, its highest-priority match).
        self.groups, group_of = torch.unique(self.g_pids, return_inverse=True)
        generator = torch.Generator().manual_seed(int(seed))
        draws = []
        for _ in range(num_draws):
            priority = torch.randperm(self.g_pids.numel(), generator=generator).to(self.g_pids.device)
            best = torch.full_like(self.groups, self.g_pids.numel()).scatter_reduce_(0, group_of, priority, "amin")
            chosen = torch.nonzero(priority == best[group_of]).squeeze(1)
            draws.append((priority, chosen, group_of[chosen]))
        return draws

    def _single_shot_ranks(self, dist, q_pids, q_camids):
        """``[Qv, num_draws]`` rank of the sampled match in each draw's single-shot gallery."""
        matches = (self.g_pids[None, :] == q_pids[:, None]) & (self.g_camids[None, :] != q_camids[:, None])
        q_group = torch.searchsorted(self.groups, q_pids)
        ranks = []
        for priority, chosen, chosen_group in self._draws:
            pick = torch.where(matches, priority[None, :], priority.numel()).argmin(1)
            d_pick = dist.gather(1, pick[:, None])
            d_other = dist[:, chosen]
            before = (d_other < d_pick) | ((d_other == d_pick) & (chosen[None, :] < pick[:, None]))
            ranks.append(1 + (before & (chosen_group[None, :] != q_group[:, None])).sum(1))
        return torch.stack(ranks, 1)

    def add(self, dist, q_pids, q_camids):
        """Add the rows ``dist [Qb, G]`` (float32/float64) of queries ``q_pids``, ``q_camids [Qb]`` int64."""
        first, ap, inp = ops.reid_rank_stats(dist, q_pids, self.g_pids, q_camids, self.g_camids)
        valid = first > 0
        self.num_query += dist.shape[0]
        self.first.append(first[valid].cpu())
        self.ap.append(ap[valid].cpu())
        self.inp.append(inp[valid].cpu())
        if self.protocol == "cuhk03":
            self.single_shot.append(self._single_shot_ranks(dist[valid], q_pids[valid], q_camids[valid]).cpu())

    def result(self, max_rank=50):
        """The :class:`RankResult`; CMC has ``min(max_rank, G)`` entries. Raises if no query had a match."""
        max_rank = min(_checks.positive_int(max_rank, "max_rank"), self.g_pids.numel())
        first = torch.cat(self.first) if self.first else torch.zeros(0, dtype=torch.int64)
        if first.numel() == 0:
            raise ValueError(
                "no query has a valid match: every query's pid is absent from the gallery or seen only by "
                "the query's own camera"
            )
        ranks = torch.cat(self.single_shot) if self.protocol == "cuhk03" else first[:, None]
        hits = ranks[:, :, None] <= torch.arange(1, max_rank + 1)
        cmc = hits.double().mean((0, 1)).numpy()
        return RankResult(
            cmc=cmc,
            mAP=float(torch.cat(self.ap).mean()),
            mINP=float(torch.cat(self.inp).mean()),
            num_valid=int(first.numel()),
            num_query=self.num_query,
        )


def evaluate_rank(
    distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, protocol="market", num_draws=10, seed=0, block_rows=None
):
    """CMC, mAP and mINP of a query x gallery distance matrix (see the module docstring for the rules).

    Args:
        distmat: ``[Q, G]`` tensor (CPU or CUDA; the ranking runs there) or numpy array; float32 or
            float64 (float16/bfloat16 are ranked in float32). Smaller is closer.
        q_pids, q_camids: ``[Q]`` integer ids; g_pids, g_camids: ``[G]`` (tensors or numpy arrays).
        max_rank: CMC length (capped at G). protocol: ``"market"`` or ``"cuhk03"``.
        num_draws, seed: CUHK03 single-gallery-shot draws. block_rows: query rows per block.

    Returns:
        :class:`RankResult` with ``.cmc``, ``.mAP``, ``.mINP``, ``.num_valid``, ``.num_query``.
    """
    dist = _validate.matrix(distmat, "distmat", "Q")
    num_q, num_g = dist.shape
    q_pids = _validate.ids(q_pids, "q_pids", num_q, "query rows of distmat", dist.device)
    q_camids = _validate.ids(q_camids, "q_camids", num_q, "query rows of distmat", dist.device)
    acc = RankAccumulator(
        _validate.ids(g_pids, "g_pids", num_g, "gallery columns of distmat", dist.device),
        _validate.ids(g_camids, "g_camids", num_g, "gallery columns of distmat", dist.device),
        protocol,
        num_draws,
        seed,
    )
    rows = _validate.block_rows(block_rows, num_g)
    for q0 in range(0, num_q, rows):
        acc.add(dist[q0 : q0 + rows], q_pids[q0 : q0 + rows], q_camids[q0 : q0 + rows])
    return acc.result(max_rank)
