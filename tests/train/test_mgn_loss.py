"""MGNLoss: the formula on hand-made outputs, errors, and a few steps of MGN / MGN+PTL that reduce it."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from ptl_ext.models import MGN, MGNPTL, MGNOutput
from ptl_ext.nn import reset_states
from ptl_ext.train import MGNLoss, batch_hard_triplet_loss

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")


def fake_output(batch=8, classes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    pieces = tuple(torch.randn(batch, classes, generator=g, requires_grad=True) for _ in range(8))
    globals_ = tuple(torch.randn(batch, 256, generator=g, requires_grad=True) for _ in range(3))
    features = torch.randn(batch, 2048, generator=g)
    return MGNOutput(torch.stack(pieces).mean(0), features, pieces, globals_)


def hardest_triplet(features, labels, margin):
    """Per-anchor loops, as the textbook states it."""
    dist = torch.cdist(features, features)
    losses = []
    for a in range(len(labels)):
        pos = [dist[a, j] for j in range(len(labels)) if labels[j] == labels[a] and j != a]
        neg = [dist[a, j] for j in range(len(labels)) if labels[j] != labels[a]]
        losses.append(torch.relu(max(pos) - min(neg) + margin))
    return torch.stack(losses).mean()


def test_formula_on_hand_made_outputs():
    out = fake_output()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss, parts = MGNLoss()(out, labels, None)
    ce = sum(F.cross_entropy(p, labels) for p in out.piece_logits) / 8
    triplet = sum(hardest_triplet(f, labels, 1.2) for f in out.global_features) / 3
    torch.testing.assert_close(parts["ce"], ce.detach())
    torch.testing.assert_close(parts["triplet"], triplet.detach(), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loss, ce + triplet, rtol=1e-4, atol=1e-4)
    loss.backward()
    assert all(p.grad is not None for p in out.piece_logits + out.global_features)
    weighted, _ = MGNLoss(triplet_margin=0.5, triplet_weight=2.0, ce_weight=0.5)(out, labels)
    expected = 0.5 * ce + 2.0 * sum(batch_hard_triplet_loss(f, labels, 0.5) for f in out.global_features) / 3
    torch.testing.assert_close(weighted, expected)


def test_errors():
    with pytest.raises(TypeError, match="MGNOutput"):
        MGNLoss()((torch.zeros(2, 3), torch.zeros(2, 4)), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="triplet_margin"):
        MGNLoss(triplet_margin=-1)
    with pytest.raises(ValueError, match="ce_weight"):
        MGNLoss(ce_weight=-1)
    with pytest.raises(ValueError, match="label_smoothing"):
        MGNLoss(label_smoothing=1.0)


@pytest.mark.parametrize("cls", [MGN, MGNPTL], ids=["mgn", "mgn_ptl"])
def test_a_few_steps_reduce_the_loss(cls):
    torch.manual_seed(0)
    model = cls(4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])  # P×K = 4 × 2
    x = torch.randn(4, 3, 1, 1)[labels] + 0.5 * torch.randn(8, 3, 96, 32)  # identities differ by colour
    loss_fn = MGNLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.003, momentum=0.9)

    def loss_now():
        reset_states(model)
        with torch.no_grad():
            return loss_fn(model(x, return_features=True), labels)[0].item()

    before = loss_now()
    reset_states(model)
    for _ in range(5):
        loss, parts = loss_fn(model(x, return_features=True), labels)
        assert set(parts) == {"ce", "triplet"}
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_now()
    assert after < before, (before, after)
