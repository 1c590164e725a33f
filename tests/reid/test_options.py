"""Re-ranking and query-expansion options: RerankConfig, rerank_config, AQE against numpy, input refusals."""

import inspect

import numpy as np
import pytest
import torch

from ptl_ext.reid import (
    AQEConfig,
    RerankConfig,
    aqe,
    compute_distance,
    evaluate_features,
    evaluate_rank,
    re_ranking,
    rerank_config,
)


def _ids(p):
    return {k: p[k] for k in ("q_pids", "g_pids", "q_camids", "g_camids")}


def test_rerank_config_is_the_one_home_of_the_defaults():
    default = RerankConfig()
    assert (default.k1, default.k2, default.lambda_value) == (20, 6, 0.3)
    params = inspect.signature(re_ranking).parameters
    assert (params["k1"].default, params["k2"].default, params["lambda_value"].default) == (20, 6, 0.3)
    assert rerank_config(True) == default and rerank_config(False) is None
    assert rerank_config(True, k1=7, lambda_value=1) == RerankConfig(7, 6, 1.0)
    assert rerank_config(RerankConfig(5, 2)) == RerankConfig(5, 2, 0.3)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"k1": 0}, ValueError, "k1 must be an integer >= 1"),
        ({"k1": 2.5}, TypeError, "k1 must be an integer"),
        ({"k2": 0}, ValueError, "k2 must be an integer >= 1"),
        ({"k2": True}, TypeError, "k2 must be an integer"),
        ({"lambda_value": 1.5}, ValueError, "lambda_value must be <= 1"),
        ({"lambda_value": -0.1}, ValueError, "lambda_value must be >= 0"),
        ({"lambda_value": float("nan")}, ValueError, "lambda_value must be a finite number"),
        ({"lambda_value": "0.3"}, TypeError, "lambda_value must be a number"),
    ],
)
def test_rerank_options_are_validated(problem, kwargs, error, match):
    with pytest.raises(error, match=match):
        RerankConfig(**kwargs)
    with pytest.raises(error, match=match):
        rerank_config(False, **kwargs)  # checked even while re-ranking is off
    p = problem(0, 8, 20, 4, 2)
    with pytest.raises(error, match=match):
        evaluate_features(**p, rerank=True, **kwargs)
    with pytest.raises(error, match=match):
        re_ranking(p["qf"], p["gf"], **kwargs)


def test_rerank_config_refusals():
    with pytest.raises(ValueError, match="inside the RerankConfig"):
        rerank_config(RerankConfig(), k1=3)
    with pytest.raises(TypeError, match="rerank must be true or false"):
        rerank_config("yes")
    with pytest.raises(ValueError, match="k1 \\+ 1 = 31 neighbours"):
        RerankConfig(k1=30).check_size(30)


def test_k1_k2_lambda_change_the_reranked_result(problem):
    p = problem(3, 20, 60, 8, 3, spread=1.5)
    base = re_ranking(p["qf"], p["gf"], k1=8, k2=3, lambda_value=0.3)
    for kwargs in ({"k1": 4}, {"k2": 1}, {"lambda_value": 0.8}):
        other = re_ranking(p["qf"], p["gf"], **{"k1": 8, "k2": 3, "lambda_value": 0.3, **kwargs})
        assert not torch.equal(base, other), kwargs
    want = evaluate_rank(re_ranking(p["qf"], p["gf"], k1=5, k2=2, lambda_value=0.6), **_ids(p))
    got = evaluate_features(**p, normalize=False, rerank=RerankConfig(k1=5, k2=2, lambda_value=0.6))  # as re_ranking
    assert got.mAP == pytest.approx(want.mAP, abs=1e-12) and np.array_equal(got.cmc, want.cmc)
    assert got.mAP != pytest.approx(evaluate_features(**p, rerank=True, k1=12).mAP, abs=1e-9)


def _aqe_numpy(qf, gf, k, alpha):
    """Alpha query expansion written directly: each row of [qf; gf] becomes the normalised sum of its k
    most cosine-similar normalised rows (itself included), weighted by max(cos, 0) ** alpha."""
    x = np.concatenate([qf, gf]).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out = np.empty_like(x)
    for i in range(len(x)):
        sims = x @ x[i]
        top = np.argsort(-sims, kind="stable")[:k]
        out[i] = (np.maximum(sims[top], 0.0) ** alpha) @ x[top]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out[: len(qf)], out[len(qf) :]


@pytest.mark.parametrize("k, alpha", [(1, 3.0), (3, 3.0), (5, 0.0), (4, 1.5)])
def test_aqe_equals_numpy(problem, k, alpha):
    p = problem(4, 7, 15, 4, 2, dim=6)
    qf, gf = p["qf"].astype(np.float64), p["gf"].astype(np.float64)
    want_q, want_g = _aqe_numpy(qf, gf, k, alpha)
    got_q, got_g = aqe(qf, gf, k, alpha, block_rows=4)
    np.testing.assert_allclose(got_q.numpy(), want_q, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got_g.numpy(), want_g, rtol=0, atol=1e-12)
    if k == 1:  # only itself: plain L2 normalisation
        np.testing.assert_allclose(got_q.numpy(), qf / np.linalg.norm(qf, axis=1, keepdims=True), atol=1e-12)


def test_aqe_in_evaluate_features(problem):
    p = problem(5, 20, 60, 8, 3, spread=2.0)
    q, g = aqe(p["qf"], p["gf"], 4, 2.0)
    for metric in ("euclidean", "cosine"):
        want = evaluate_rank(compute_distance(q, g, metric), **_ids(p))
        got = evaluate_features(**p, metric=metric, aqe_k=4, aqe_alpha=2.0, block_rows=6)
        assert got.mAP == pytest.approx(want.mAP, abs=1e-12) and np.array_equal(got.cmc, want.cmc)
    want = evaluate_rank(re_ranking(q, g, k1=6, k2=2), **_ids(p))
    got = evaluate_features(**p, rerank=True, k1=6, k2=2, aqe_k=4, aqe_alpha=2.0)
    assert got.mAP == pytest.approx(want.mAP, abs=1e-12)
    assert evaluate_features(**p, aqe_k=0).mAP == pytest.approx(evaluate_features(**p).mAP, abs=1e-15)


def test_aqe_options_are_validated(problem):
    p = problem(6, 5, 10, 3, 2)
    assert AQEConfig() == AQEConfig(0, 3.0) and not AQEConfig().enabled
    with pytest.raises(ValueError, match="aqe_k must be an integer >= 0"):
        evaluate_features(**p, aqe_k=-1)
    with pytest.raises(TypeError, match="aqe_k must be an integer"):
        evaluate_features(**p, aqe_k=2.0)
    with pytest.raises(ValueError, match="aqe_alpha must be >= 0"):
        evaluate_features(**p, aqe_k=2, aqe_alpha=-1)
    with pytest.raises(ValueError, match="aqe_k must be in \\[1, Q \\+ G\\] = \\[1, 15\\]"):
        evaluate_features(**p, aqe_k=16)
    with pytest.raises(ValueError, match="aqe_k must be in"):
        aqe(p["qf"], p["gf"], 0)


def test_huge_features_are_refused_naming_them(problem):
    p = problem(7, 10, 30, 5, 2)
    true = evaluate_features(**p)
    for dtype, scale in ((np.float32, 1e20), (np.float64, 1e160)):
        big = {**p, "qf": p["qf"].astype(dtype) * scale}
        with pytest.raises(ValueError, match="qf has rows whose squared L2 norm .* overflows"):
            evaluate_features(**big)
        with pytest.raises(ValueError, match="qf has rows whose squared L2 norm"):
            compute_distance(big["qf"], p["gf"].astype(dtype))
        with pytest.raises(ValueError, match="gf has rows whose squared L2 norm"):
            compute_distance(p["qf"].astype(dtype), p["gf"].astype(dtype) * scale)
        with pytest.raises(ValueError, match="qf has rows whose squared L2 norm"):
            evaluate_features(**big, metric="cosine")
    # float64 features scaled by 1e20 fit float64 distances (and rank as before) but not float32 re-ranking
    big = {**p, "qf": p["qf"].astype(np.float64) * 1e20, "gf": p["gf"].astype(np.float64) * 1e20}
    scaled = evaluate_features(**big)
    assert scaled.mAP == pytest.approx(true.mAP, abs=1e-6) and np.array_equal(scaled.cmc, true.cmc)
    with pytest.raises(ValueError, match="qf has rows whose squared L2 norm .* overflows torch.float32"):
        evaluate_features(**big, rerank=True, k1=4, k2=2)
    with pytest.raises(ValueError, match="qf has rows whose squared L2 norm .* overflows torch.float32"):
        re_ranking(big["qf"], big["gf"], k1=4, k2=2)


def test_string_ids_are_refused_naming_them(problem):
    p = problem(8, 4, 8, 3, 2)
    with pytest.raises(TypeError, match="q_pids must hold numbers, got a numpy array of dtype <U"):
        evaluate_features(**{**p, "q_pids": p["q_pids"].astype(str)})
    with pytest.raises(TypeError, match="g_camids must hold numbers"):
        evaluate_rank(np.zeros((4, 8)), p["q_pids"], p["g_pids"], p["q_camids"], p["g_camids"].astype(object))
    with pytest.raises(TypeError, match="qf must hold numbers"):
        compute_distance(p["qf"].astype(str), p["gf"])


def test_eval_config_equals_keywords(problem):
    from ptl_ext.reid import EvalConfig, RerankConfig

    p = problem(3, 12, 40, 6, 3)
    config = EvalConfig(normalize=True, rerank=RerankConfig(k1=5, k2=2), block_rows=5)
    got = evaluate_features(**p, config=config)
    want = evaluate_features(**p, normalize=True, rerank=True, k1=5, k2=2, block_rows=5)
    assert got.mAP == want.mAP and (got.cmc == want.cmc).all()
    assert EvalConfig.from_options(rerank=True, k1=5, k2=2, normalize=True, block_rows=5) == config
    with pytest.raises(ValueError, match="inside the EvalConfig"):
        evaluate_features(**p, config=config, normalize=False)
    with pytest.raises(TypeError, match="unexpected option 'normalise'"):
        evaluate_features(**p, normalise=True)
    with pytest.raises(ValueError, match="rerank=True works on squared euclidean"):
        EvalConfig(metric="cosine", rerank=RerankConfig())
