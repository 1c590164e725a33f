import math

import pytest
import torch
import torch.nn.functional as F

from ptl_ext.train import ClassificationLoss, ReIDLoss, batch_hard_triplet_loss


def brute_force_triplet(features, labels, margin):
    losses = []
    for a in range(len(labels)):
        pos = [
            torch.dist(features[a], features[p]).item() for p in range(len(labels)) if p != a and labels[p] == labels[a]
        ]
        neg = [torch.dist(features[a], features[n]).item() for n in range(len(labels)) if labels[n] != labels[a]]
        if pos and neg:
            gap = max(pos) - min(neg)
            losses.append(max(0.0, gap + margin) if margin is not None else math.log1p(math.exp(gap)))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("margin", [0.3, 1.2, None])
def test_batch_hard_triplet_matches_brute_force(margin):
    torch.manual_seed(0)
    features = torch.randn(12, 5, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4])  # id 4 has no positive: skipped
    got = batch_hard_triplet_loss(features, labels, margin)
    assert got.item() == pytest.approx(brute_force_triplet(features.float(), labels, margin), rel=1e-5)


def test_triplet_gradient_and_degenerate_batches():
    features = torch.randn(6, 4, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    batch_hard_triplet_loss(features, labels, 5.0).backward()
    assert torch.isfinite(features.grad).all() and features.grad.abs().sum() > 0
    # identical features (zero distances) must not produce NaN gradients
    same = torch.zeros(4, 3, requires_grad=True)
    batch_hard_triplet_loss(same, torch.tensor([0, 0, 1, 1]), 0.3).backward()
    assert torch.isfinite(same.grad).all()
    single_id = batch_hard_triplet_loss(torch.randn(3, 2), torch.tensor([1, 1, 1]))
    assert single_id.item() == 0.0
    with pytest.raises(ValueError, match=r"features \[B, D\]"):
        batch_hard_triplet_loss(torch.randn(3, 2), torch.tensor([1, 1]))


def test_classification_loss_label_smoothing():
    torch.manual_seed(1)
    logits, targets = torch.randn(8, 5), torch.randint(0, 5, (8,))
    plain, parts = ClassificationLoss()((logits, None), targets)
    assert plain.item() == pytest.approx(F.cross_entropy(logits, targets).item())
    smooth, _ = ClassificationLoss(0.1)(logits, targets)
    logp = logits.log_softmax(1)
    manual = (-(0.9 * logp.gather(1, targets[:, None])[:, 0] + 0.1 * logp.mean(1))).mean()
    assert smooth.item() == pytest.approx(manual.item(), rel=1e-6)
    assert set(parts) == {"ce"}
    with pytest.raises(ValueError, match="label_smoothing"):
        ClassificationLoss(1.0)


def test_reid_loss_adds_weighted_triplet():
    torch.manual_seed(2)
    logits, features = torch.randn(8, 4), torch.randn(8, 16)
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss, parts = ReIDLoss(0.1, triplet_weight=0.5, triplet_margin=0.3)((logits, features), targets)
    ce = F.cross_entropy(logits, targets, label_smoothing=0.1)
    tri = batch_hard_triplet_loss(features, targets, 0.3)
    assert loss.item() == pytest.approx((ce + 0.5 * tri).item(), rel=1e-6)
    assert set(parts) == {"ce", "triplet"}
    only_ce, parts = ReIDLoss()((logits, features), targets)
    assert set(parts) == {"ce"} and only_ce.item() == pytest.approx(F.cross_entropy(logits, targets).item())
    with pytest.raises(TypeError, match="return_features=True"):
        ReIDLoss()(logits, targets)
    with pytest.raises(ValueError, match="triplet_weight"):
        ReIDLoss(triplet_weight=-1)
