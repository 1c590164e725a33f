"""ReIDEvaluator's ranking options: re-ranking k1/k2/lambda and alpha query expansion, checked when it is made."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ptl_ext import reid
from ptl_ext.train import ReIDEvaluator


class MeanFeatures(nn.Module):
    def forward(self, x):
        return x[:, 0].mean(1)


def _loader(images, pids, camids):
    return DataLoader(TensorDataset(images, torch.as_tensor(pids), torch.as_tensor(camids)), batch_size=4)


def _problem():
    torch.manual_seed(3)
    q_img, g_img = torch.randn(8, 3, 2, 6), torch.randn(24, 3, 2, 6)
    q_pids, g_pids = [i % 4 for i in range(8)], [i % 4 for i in range(24)]
    return _loader(q_img, q_pids, [0] * 8), _loader(g_img, g_pids, [1] * 24), q_img, g_img, q_pids, g_pids


def test_options_reach_the_evaluator_library():
    query, gallery, q_img, g_img, q_pids, g_pids = _problem()
    qf, gf = q_img[:, 0].mean(1), g_img[:, 0].mean(1)
    ids = dict(q_pids=q_pids, g_pids=g_pids, q_camids=[0] * 8, g_camids=[1] * 24)
    cases = [
        (dict(rerank=True, k1=5, k2=2, lambda_value=0.5), dict(rerank=reid.RerankConfig(5, 2, 0.5))),
        (dict(rerank=reid.RerankConfig(k1=7)), dict(rerank=reid.RerankConfig(k1=7))),
        (dict(aqe_k=3, aqe_alpha=2.0), dict(aqe_k=3, aqe_alpha=2.0)),
        (dict(rerank=True, aqe_k=4), dict(rerank=True, aqe_k=4)),
    ]
    for options, library in cases:
        evaluator = ReIDEvaluator(query, gallery, flip=False, **options)
        got = evaluator(MeanFeatures())
        want = reid.evaluate_features(
            torch.as_tensor(qf), gf, **{k: torch.as_tensor(v) for k, v in ids.items()}, normalize=True, **library
        )
        assert got["mAP"] == pytest.approx(want.mAP, abs=1e-12), options
    assert ReIDEvaluator(query, gallery).aqe == reid.AQEConfig()
    assert ReIDEvaluator(query, gallery, rerank=True, k1=9).rerank == reid.RerankConfig(k1=9)


@pytest.mark.parametrize(
    "options, error, match",
    [
        (dict(rerank=True, k1=0), ValueError, "k1 must be an integer >= 1"),
        (dict(rerank=True, lambda_value=2), ValueError, "lambda_value must be <= 1"),
        (dict(k2="6"), TypeError, "k2 must be an integer"),
        (dict(aqe_k=-2), ValueError, "aqe_k must be an integer >= 0"),
        (dict(aqe_k=3, aqe_alpha=float("inf")), ValueError, "aqe_alpha must be a finite number"),
        (dict(metric="manhattan"), ValueError, "metric must be one of"),
        (dict(rerank="false"), TypeError, "rerank must be true or false"),
        (dict(flip="false"), TypeError, "flip must be true or false"),
        (dict(protocol="viper"), ValueError, "protocol must be one of"),
    ],
)
def test_bad_options_fail_when_made(options, error, match):
    with pytest.raises(error, match=match):
        ReIDEvaluator(None, None, **options)
