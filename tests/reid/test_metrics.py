"""ptl_ext.reid.evaluate_rank: hand-computed cases, the textbook evaluator, CUHK03 draws, errors."""

import numpy as np
import pytest
import torch

from ptl_ext import ops, reference
from ptl_ext.reid import evaluate_rank

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _tiny():
    # query 0 (pid 1, cam 0): g0 junk (same pid and camera), matches g2 and g4 at kept ranks 2 and 4
    # query 1 (pid 2, cam 1): its only gallery item has its camera -> skipped
    # query 2 (pid 3, cam 1): g3 first -> rank 1
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1], [0.9, 0.8, 0.7, 0.1, 0.6]])
    return dict(
        distmat=dist,
        q_pids=np.array([1, 2, 3]),
        g_pids=np.array([1, 2, 1, 3, 1]),
        q_camids=np.array([0, 1, 1]),
        g_camids=np.array([0, 1, 1, 0, 2]),
    )


def test_hand_computed():
    res = evaluate_rank(**_tiny(), max_rank=4)
    np.testing.assert_allclose(res.cmc, [0.5, 1.0, 1.0, 1.0])
    assert res.mAP == pytest.approx(0.75)  # (AP 0.5 = (1/2 + 2/4)/2, AP 1) / 2
    assert res.mINP == pytest.approx(0.75)  # (2/4 + 1/1) / 2
    assert (res.num_valid, res.num_query) == (2, 3)


def test_max_rank_capped_at_gallery_size():
    assert evaluate_rank(**_tiny(), max_rank=50).cmc.shape == (5,)


def _random_case(seed, num_q=40, num_g=120, num_ids=15, num_cams=3, ties=False):
    rng = np.random.default_rng(seed)
    dist = rng.integers(0, 6, (num_q, num_g)).astype(np.float32) if ties else rng.random((num_q, num_g))
    return dict(
        distmat=dist,
        q_pids=rng.integers(0, num_ids, num_q),
        g_pids=rng.integers(0, num_ids, num_g),
        q_camids=rng.integers(0, num_cams, num_q),
        g_camids=rng.integers(0, num_cams, num_g),
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_textbook(textbook, seed, ties):
    case = _random_case(seed, num_ids=int(np.random.default_rng(seed).integers(5, 40)), ties=ties)
    cmc, mAP, mINP, num_valid = textbook.evaluate_market(*case.values(), max_rank=20)
    res = evaluate_rank(**case, max_rank=20)
    np.testing.assert_allclose(res.cmc, cmc, atol=1e-6)
    assert res.mAP == pytest.approx(mAP, abs=1e-6)
    assert res.mINP == pytest.approx(mINP, abs=1e-6)
    assert res.num_valid == num_valid


def test_streamed_blocks_and_inputs_agree():
    case = _random_case(3)
    full = evaluate_rank(**case)
    tensors = {k: torch.from_numpy(v) for k, v in case.items()}
    for res in (
        evaluate_rank(**case, block_rows=7),
        evaluate_rank(**tensors),
        evaluate_rank(**{**tensors, "distmat": tensors["distmat"].double()}),
    ):
        np.testing.assert_allclose(res.cmc, full.cmc, atol=1e-12)
        assert (res.mAP, res.mINP, res.num_valid) == pytest.approx((full.mAP, full.mINP, full.num_valid))


@pytest.mark.parametrize("ties", [False, True])
def test_rank_stats_kernel_matches_twin(ties):
    case = {k: torch.from_numpy(np.asarray(v)) for k, v in _random_case(5, ties=ties).items()}
    case["distmat"] = case["distmat"].float()
    got = ops.reid_rank_stats(*case.values())
    want = reference.reid_rank_stats(*case.values())
    assert torch.equal(got[0], want[0])
    torch.testing.assert_close(got[1], want[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(got[2], want[2], rtol=0, atol=1e-12)


def _single_shot_loop(case, num_draws, seed):
    """CUHK03 single-gallery-shot CMC with the evaluator's draws, one query and one identity at a time."""
    dist, q_pids, g_pids, q_camids, g_camids = case.values()
    generator = torch.Generator().manual_seed(seed)
    priorities = [torch.randperm(len(g_pids), generator=generator).numpy() for _ in range(num_draws)]
    ranks = []
    for q in range(len(q_pids)):
        keep = ~((g_pids == q_pids[q]) & (g_camids == q_camids[q]))
        if not (keep & (g_pids == q_pids[q])).any():
            continue
        for priority in priorities:
            chosen = []
            for pid in np.unique(g_pids[keep]):
                items = np.where(keep & (g_pids == pid))[0]
                chosen.append(items[np.argmin(priority[items])])
            chosen = np.array(chosen)
            order = chosen[np.lexsort((chosen, dist[q, chosen]))]
            ranks.append(1 + int(np.where(g_pids[order] == q_pids[q])[0][0]))
    ranks = np.array(ranks)
    return np.array([(ranks <= k).mean() for k in range(1, 11)])


@pytest.mark.parametrize("seed", [0, 1])
def test_cuhk03_single_shot_matches_loop(seed):
    case = _random_case(seed, num_q=25, num_g=80, num_ids=12)
    res = evaluate_rank(**case, max_rank=10, protocol="cuhk03", seed=seed)
    np.testing.assert_allclose(res.cmc, _single_shot_loop(case, 10, seed), atol=1e-12)
    market = evaluate_rank(**case, max_rank=10)
    assert (res.mAP, res.mINP, res.num_valid) == (market.mAP, market.mINP, market.num_valid)


def test_cuhk03_deterministic_under_seed():
    case = _random_case(7, num_ids=6)
    a = evaluate_rank(**case, protocol="cuhk03", seed=3)
    b = evaluate_rank(**case, protocol="cuhk03", seed=3, block_rows=5)
    np.testing.assert_array_equal(a.cmc, b.cmc)
    others = [evaluate_rank(**case, protocol="cuhk03", seed=s).cmc for s in range(4, 8)]
    assert any(not np.array_equal(a.cmc, c) for c in others)


def test_cuhk03_equals_market_with_one_item_per_identity():
    rng = np.random.default_rng(0)
    num_g = 30
    case = dict(
        distmat=rng.random((20, num_g)),
        q_pids=rng.integers(0, num_g, 20),
        g_pids=np.arange(num_g),
        q_camids=np.zeros(20, dtype=np.int64),
        g_camids=np.ones(num_g, dtype=np.int64),
    )
    np.testing.assert_allclose(evaluate_rank(**case, protocol="cuhk03").cmc, evaluate_rank(**case).cmc)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("protocol", ["market", "cuhk03"])
def test_device_tensors_match_numpy_inputs(device, protocol):
    """Tensors on ``device`` give what the numpy inputs give (with tied distances)."""
    raw = _random_case(2, ties=True)
    want = evaluate_rank(**raw, protocol=protocol)
    got = evaluate_rank(**{k: torch.from_numpy(np.asarray(v)).to(device) for k, v in raw.items()}, protocol=protocol)
    np.testing.assert_allclose(got.cmc, want.cmc, atol=1e-12)
    assert (got.mAP, got.mINP, got.num_valid) == pytest.approx((want.mAP, want.mINP, want.num_valid), abs=1e-12)


def test_errors():
    case = _tiny()
    with pytest.raises(ValueError, match="q_pids has 2 entries"):
        evaluate_rank(**{**case, "q_pids": case["q_pids"][:2]})
    with pytest.raises(ValueError, match="g_camids has 4 entries"):
        evaluate_rank(**{**case, "g_camids": case["g_camids"][:4]})
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(**{**case, "distmat": np.where(case["distmat"] > 0.8, np.nan, case["distmat"])})
    with pytest.raises(ValueError, match="distmat must be non-empty"):
        evaluate_rank(
            **{**case, "distmat": np.zeros((0, 5)), "q_pids": case["q_pids"][:0], "q_camids": case["q_camids"][:0]}
        )
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(**{**case, "distmat": case["distmat"][0]})
    with pytest.raises(TypeError, match="q_pids must have an integer dtype"):
        evaluate_rank(**{**case, "q_pids": case["q_pids"].astype(np.float32)})
    with pytest.raises(ValueError, match="protocol"):
        evaluate_rank(**case, protocol="duke")
    with pytest.raises(ValueError, match="max_rank"):
        evaluate_rank(**case, max_rank=0)
    with pytest.raises(ValueError, match="no query has a valid match"):
        evaluate_rank(**{**case, "g_camids": np.ones(5, dtype=np.int64), "q_camids": np.ones(3, dtype=np.int64)})
