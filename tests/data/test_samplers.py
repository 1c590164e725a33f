from collections import Counter

import pytest

from ptl_ext.data import PKBatchSampler, RandomBatchSampler, ShardSampler


def pids_of(counts):
    return [pid for pid, n in enumerate(counts) for _ in range(n)]


def test_pk_batches_have_p_distinct_ids_with_k_images_each():
    pids = pids_of([2, 5, 8, 4, 4, 3, 9, 6, 1, 7])
    sampler = PKBatchSampler(pids, p=3, k=4, seed=5)
    batches = list(sampler)
    assert len(batches) == len(sampler) > 0
    for batch in batches:
        assert len(batch) == 12
        counts = Counter(pids[i] for i in batch)
        assert len(counts) == 3 and set(counts.values()) == {4}
        for i in batch:
            assert 0 <= i < len(pids)
    # identities with at least k images contribute distinct images within a batch group
    for batch in batches:
        for start in range(0, 12, 4):
            group = batch[start : start + 4]
            if pids.count(pids[group[0]]) >= 4:
                assert len(set(group)) == 4


def test_pk_order_depends_on_seed_and_epoch_only():
    pids = pids_of([6] * 12)
    a, b = PKBatchSampler(pids, 4, 2, seed=1), PKBatchSampler(pids, 4, 2, seed=1)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    assert list(PKBatchSampler(pids, 4, 2, seed=2)) != first


def test_pk_ranks_split_batches():
    pids = pids_of([8] * 10)
    whole = list(PKBatchSampler(pids, 2, 4, seed=3))
    rank0 = list(PKBatchSampler(pids, 2, 4, seed=3, rank=0, world_size=2))
    rank1 = list(PKBatchSampler(pids, 2, 4, seed=3, rank=1, world_size=2))
    assert len(rank0) == len(rank1) == len(whole) // 2
    assert rank0 == whole[0::2][: len(rank0)] and rank1 == whole[1::2][: len(rank1)]


def test_pk_errors():
    with pytest.raises(ValueError, match="p=5 identities"):
        PKBatchSampler(pids_of([4, 4]), p=5, k=2)
    with pytest.raises(ValueError, match="positive ints"):
        PKBatchSampler(pids_of([4, 4]), p=2, k=0)
    with pytest.raises(ValueError, match="rank"):
        PKBatchSampler(pids_of([4, 4]), p=2, k=2, rank=2, world_size=2)


def test_shard_sampler_interleaves_to_the_whole():
    shards = [list(ShardSampler(10, r, 3)) for r in range(3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert [len(ShardSampler(10, r, 3)) for r in range(3)] == [4, 3, 3]
    with pytest.raises(ValueError, match="rank"):
        ShardSampler(10, 3, 3)


def test_random_batches_cover_each_item_at_most_once_per_epoch_and_depend_on_seed_and_epoch():
    sampler = RandomBatchSampler(23, 5, seed=4)
    batches = list(sampler)
    flat = [i for batch in batches for i in batch]
    assert len(batches) == len(sampler) == 4 and all(len(b) == 5 for b in batches)
    assert len(set(flat)) == 20 and set(flat) <= set(range(23))  # the partial batch is dropped
    assert list(RandomBatchSampler(23, 5, seed=4)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    rank0 = list(RandomBatchSampler(23, 5, seed=4, rank=0, world_size=2))
    rank1 = list(RandomBatchSampler(23, 5, seed=4, rank=1, world_size=2))
    assert rank0 == batches[0::2] and rank1 == batches[1::2]


def test_random_batch_sampler_arguments():
    with pytest.raises(ValueError, match="cannot fill one batch of 8"):
        RandomBatchSampler(7, 8)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        RandomBatchSampler(7, 0)
