"""Samplers: the P×K identity batch sampler, a uniformly random batch sampler and a rank shard sampler for
distributed evaluation."""

from collections import defaultdict

import numpy as np
from torch.utils.data import Sampler


class PKBatchSampler(Sampler):
    """Batches of ``p`` distinct identities × ``k`` images each (for the batch-hard triplet loss).

    Per epoch, each identity's images are shuffled and cut into groups of ``k`` (an identity
    with fewer than ``k`` images is filled up by sampling with replacement; a trailing
    partial group is dropped); batches then draw ``p`` identities that still have groups,
    until fewer than ``p`` remain. The order depends only on ``(seed, epoch)``. With
    ``world_size > 1`` rank ``r`` takes batches ``r, r + world_size, ...`` (equal counts).

    Args:
        pids: sequence of ``int`` identity labels, one per dataset item.
        p, k: identities per batch and images per identity.
    Yields:
        lists of ``p * k`` dataset indices.
    """

    def __init__(self, pids, p, k, seed=0, rank=0, world_size=1):
        if not (isinstance(p, int) and p >= 1 and isinstance(k, int) and k >= 1):
            raise ValueError(f"PKBatchSampler: p and k must be positive ints, got p={p}, k={k}")
        if not 0 <= rank < world_size:
            raise ValueError(
                f"PKBatchSampler: rank must be in [0, world_size), got rank={rank}, world_size={world_size}"
            )
        self.index_by_pid = defaultdict(list)
        for index, pid in enumerate(pids):
            self.index_by_pid[int(pid)].append(index)
        if len(self.index_by_pid) < p:
            raise ValueError(f"PKBatchSampler: p={p} identities per batch but the dataset has {len(self.index_by_pid)}")
        self.p, self.k, self.seed, self.rank, self.world_size = p, k, seed, rank, world_size
        self.epoch = 0
        self._cache = None

    def set_epoch(self, epoch):
        """Select the epoch whose batch order is produced next."""
        self.epoch = epoch

    def _batches(self):
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = {}
        for pid in sorted(self.index_by_pid):
            indices = np.asarray(self.index_by_pid[pid])
            if len(indices) < self.k:
                indices = rng.choice(indices, size=self.k, replace=True)
            else:
                indices = rng.permutation(indices)
            usable = len(indices) - len(indices) % self.k
            groups[pid] = [indices[i : i + self.k].tolist() for i in range(0, usable, self.k)]
        available = sorted(groups)
        batches = []
        while len(available) >= self.p:
            chosen = rng.choice(len(available), size=self.p, replace=False)
            batch = []
            for position in chosen:
                batch += groups[available[position]].pop()
            batches.append(batch)
            available = [pid for pid in available if groups[pid]]
        per_rank = len(batches) // self.world_size
        mine = batches[self.rank :: self.world_size][:per_rank]
        self._cache = (self.epoch, mine)
        return mine

    def __iter__(self):
        return iter(self._batches())

    def __len__(self):
        return len(self._batches())


class RandomBatchSampler(Sampler):
    """Batches of ``batch_size`` indices drawn uniformly without replacement from ``length`` items (a
    shuffle cut into batches; the trailing partial batch is dropped), whatever their identities.

    The order depends only on ``(seed, epoch)``; with ``world_size > 1`` rank ``r`` takes batches
    ``r, r + world_size, ...`` (equal counts). Yields lists of ``batch_size`` dataset indices.
    """

    def __init__(self, length, batch_size, seed=0, rank=0, world_size=1):
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"RandomBatchSampler: batch_size must be a positive int, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(
                f"RandomBatchSampler: rank must be in [0, world_size), got rank={rank}, world_size={world_size}"
            )
        if length < batch_size * world_size:
            raise ValueError(
                f"RandomBatchSampler: {length} items cannot fill one batch of {batch_size} per process "
                f"({world_size} process(es))"
            )
        self.length, self.batch_size, self.seed, self.rank, self.world_size = length, batch_size, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch):
        """Select the epoch whose batch order is produced next."""
        self.epoch = epoch

    def _batches(self):
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.length)
        count = self.length // self.batch_size
        batches = [order[i * self.batch_size : (i + 1) * self.batch_size].tolist() for i in range(count)]
        per_rank = count // self.world_size
        return batches[self.rank :: self.world_size][:per_rank]

    def __iter__(self):
        return iter(self._batches())

    def __len__(self):
        return self.length // self.batch_size // self.world_size


class ShardSampler(Sampler):
    """Indices ``rank, rank + world_size, ...`` of a dataset of ``length`` items, in order, no padding.

    Gathering the ranks' outputs and interleaving them restores the dataset order
    (see ``ptl_ext.train.distributed.gather_interleaved``).
    """

    def __init__(self, length, rank=0, world_size=1):
        if not 0 <= rank < world_size:
            raise ValueError(f"ShardSampler: rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self):
        return len(range(self.rank, self.length, self.world_size))
