"""ptl_ext.reid.evaluate_features: streamed evaluation equals the matrix-based path and the textbook."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ptl_ext.reid import compute_distance, evaluate_features, evaluate_rank, re_ranking

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _same(a, b):
    np.testing.assert_allclose(a.cmc, b.cmc, rtol=0, atol=1e-12)
    assert (a.mAP, a.mINP, a.num_valid, a.num_query) == pytest.approx((b.mAP, b.mINP, b.num_valid, b.num_query))


@pytest.mark.parametrize("seed", range(4))
def test_matches_textbook(textbook, problem, seed):
    p = problem(seed, 30, 90, 10, 3, spread=1.5)
    x = np.concatenate([p["qf"], p["gf"]]).astype(np.float64)
    exact = textbook.squared_distances(x)[: len(p["qf"]), len(p["qf"]) :]
    cmc, mAP, mINP, num_valid = textbook.evaluate_market(
        exact, p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"], 20
    )
    res = evaluate_features(**p, max_rank=20, block_rows=7, normalize=False)  # the textbook ranks raw features
    np.testing.assert_allclose(res.cmc, cmc, atol=1e-6)
    assert (res.mAP, res.mINP, res.num_valid) == pytest.approx((mAP, mINP, num_valid), abs=1e-6)


@pytest.mark.parametrize("metric, normalize", [("euclidean", False), ("euclidean", True), ("cosine", False)])
@pytest.mark.parametrize("protocol", ["market", "cuhk03"])
def test_streaming_equals_full_matrix(problem, metric, normalize, protocol):
    p = problem(7, 40, 100, 12, 4, duplicates=6)
    ids = {k: p[k] for k in ("q_pids", "g_pids", "q_camids", "g_camids")}
    qf, gf = torch.from_numpy(p["qf"]), torch.from_numpy(p["gf"])
    if normalize:
        qf, gf = F.normalize(qf, dim=1), F.normalize(gf, dim=1)
    want = evaluate_rank(compute_distance(qf, gf, metric), **ids, protocol=protocol)
    _same(evaluate_features(**p, metric=metric, normalize=normalize, protocol=protocol, block_rows=3), want)


def test_rerank_equals_full_matrix(problem):
    p = problem(8, 40, 100, 12, 4, duplicates=6)
    ids = {k: p[k] for k in ("q_pids", "g_pids", "q_camids", "g_camids")}
    want = evaluate_rank(re_ranking(p["qf"], p["gf"], k1=6, k2=3, lambda_value=0.4), **ids)
    _same(evaluate_features(**p, rerank=True, k1=6, k2=3, lambda_value=0.4, block_rows=9), want)


def test_rerank_improves_clustered_problem(problem):
    p = problem(9, 60, 300, 20, 4, dim=32, spread=2.5)
    plain = evaluate_features(**p)
    reranked = evaluate_features(**p, rerank=True, k1=10, k2=3)
    assert reranked.mAP > plain.mAP


@pytest.mark.parametrize("device", DEVICES)
def test_device_tensors_match_numpy_inputs(problem, device):
    """Tensors on ``device`` give what the numpy inputs (evaluated on the CPU) give, with and without
    re-ranking."""
    p = problem(10, 40, 120, 12, 4)
    for rerank in (False, True):
        cpu = evaluate_features(**p, rerank=rerank, k1=8, k2=3)
        got = evaluate_features(**{k: torch.from_numpy(v).to(device) for k, v in p.items()}, rerank=rerank, k1=8, k2=3)
        _same(got, cpu)


def test_errors(problem):
    p = problem(0, 10, 30, 5, 2)
    with pytest.raises(ValueError, match="rerank=True works on squared euclidean"):
        evaluate_features(**p, rerank=True, metric="cosine")
    with pytest.raises(ValueError, match="g_pids has 29 entries but there are 30 gallery features"):
        evaluate_features(**{**p, "g_pids": p["g_pids"][:-1]})
    with pytest.raises(ValueError, match="q_camids has 9 entries"):
        evaluate_features(**{**p, "q_camids": p["q_camids"][:-1]})
    with pytest.raises(ValueError, match="gf must be non-empty"):
        evaluate_features(**{**p, "gf": p["gf"][:0], "g_pids": p["g_pids"][:0], "g_camids": p["g_camids"][:0]})
    with pytest.raises(ValueError, match="NaN"):
        evaluate_features(**{**p, "gf": np.full_like(p["gf"], np.inf)})
    with pytest.raises(ValueError, match="k1 \\+ 1"):
        evaluate_features(**p, rerank=True, k1=40)
    with pytest.raises(ValueError, match="protocol"):
        evaluate_features(**p, protocol="viper")
