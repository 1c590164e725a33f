import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ptl_ext import reid
from ptl_ext.train import ClassificationEvaluator, ReIDEvaluator, extract_features


class ColumnFeatures(nn.Module):
    """Features = per-column means of channel 0 (not mirror-symmetric); logits = the same."""

    def forward(self, x, return_features=False):
        features = x[:, 0].mean(1)
        if return_features:
            return features, features
        return features


def loader(images, pids, camids, batch_size=3):
    return DataLoader(TensorDataset(images, torch.as_tensor(pids), torch.as_tensor(camids)), batch_size=batch_size)


def test_extract_features_flip_and_mode_restored():
    torch.manual_seed(0)
    images = torch.randn(7, 3, 4, 5)
    model = ColumnFeatures().train()
    feats, pids, cams = extract_features(model, loader(images, range(7), [0] * 7), flip=True)
    expected = images[:, 0].mean(1) + images.flip(-1)[:, 0].mean(1)
    assert torch.allclose(feats, expected) and pids.tolist() == list(range(7)) and model.training
    plain, _, _ = extract_features(model, loader(images, range(7), [0] * 7), flip=False)
    assert torch.allclose(plain, images[:, 0].mean(1))
    with pytest.raises(ValueError, match="no batches"):
        extract_features(model, loader(images[:0], [], []))


def test_reid_evaluator_matches_the_evaluator_library():
    torch.manual_seed(1)
    q_img, g_img = torch.randn(6, 3, 2, 5), torch.randn(15, 3, 2, 5)
    q_pids, g_pids = [0, 1, 2, 3, 4, 5], [i % 6 for i in range(15)]
    q_cams, g_cams = [0] * 6, [i % 3 for i in range(15)]
    evaluator = ReIDEvaluator(loader(q_img, q_pids, q_cams), loader(g_img, g_pids, g_cams), flip=False, normalize=False)
    metrics = evaluator(ColumnFeatures())
    expected = reid.evaluate_rank(
        reid.compute_distance(q_img[:, 0].mean(1), g_img[:, 0].mean(1)),
        torch.tensor(q_pids),
        torch.tensor(g_pids),
        torch.tensor(q_cams),
        torch.tensor(g_cams),
    )
    assert metrics["mAP"] == pytest.approx(expected.mAP) and metrics["mINP"] == pytest.approx(expected.mINP)
    assert metrics["rank1"] == pytest.approx(expected.cmc[0]) and metrics["rank5"] == pytest.approx(expected.cmc[4])
    assert metrics["num_valid"] == expected.num_valid
    reranked = ReIDEvaluator(loader(q_img, q_pids, q_cams), loader(g_img, g_pids, g_cams), rerank=True)
    assert 0.0 <= reranked(ColumnFeatures())["mAP"] <= 1.0
    with pytest.raises(ValueError, match="rerank needs metric='euclidean'"):
        ReIDEvaluator(None, None, metric="cosine", rerank=True)


def test_classification_evaluator_error():
    images = torch.eye(4).view(4, 1, 1, 4).expand(4, 3, 1, 4).contiguous()  # argmax of column means = index
    labels = torch.tensor([0, 1, 2, 0])
    data = DataLoader(TensorDataset(images, labels), batch_size=3)
    assert ClassificationEvaluator(data)(ColumnFeatures())["top1_error"] == pytest.approx(0.25)
