import pytest
import torch
import torch.nn.functional as F

from ptl_ext import models
from ptl_ext.nn import BConvCell
from ptl_ext.train import STD, FrozenTeacher, ReIDLoss, STDLoss, TrainConfig, Trainer
from ptl_ext.train.distill import check_feature_sizes

SIZE = (32, 16)


def test_loss_equals_the_formula_on_hand_made_tensors():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]])
    targets = torch.tensor([0, 1])
    student = torch.tensor([[1.0, -2.0], [0.5, 4.0]])
    teacher = torch.tensor([[0.0, -1.0], [2.5, 1.0]])
    loss, parts = STDLoss(lam=0.8)((logits, student), targets, teacher_features=teacher)
    # cross-entropy by hand: -log softmax at the targets
    ce = (
        -(
            torch.log(torch.exp(logits[0, 0]) / torch.exp(logits[0]).sum())
            + torch.log(torch.exp(logits[1, 1]) / torch.exp(logits[1]).sum())
        )
        / 2
    )
    l1 = (1 + 1 + 2 + 3) / 4
    assert loss.item() == pytest.approx(0.2 * ce.item() + 0.8 * l1, rel=1e-6)
    assert parts["l1"].item() == pytest.approx(l1) and parts["ce"].item() == pytest.approx(ce.item(), rel=1e-6)
    # the teacher callable gives the same
    same, _ = STDLoss(lam=0.8, teacher=lambda images: teacher)((logits, student), targets, torch.zeros(2, 3, 4, 4))
    assert same.item() == loss.item()


def test_lambda_zero_is_cross_entropy_and_a_base_loss_is_weighted():
    torch.manual_seed(0)
    logits, features, teacher = torch.randn(6, 4), torch.randn(6, 8), torch.randn(6, 8)
    targets = torch.tensor([0, 0, 1, 1, 2, 2])
    loss, _ = STDLoss(lam=0.0)((logits, features), targets, teacher_features=teacher)
    assert torch.equal(loss, F.cross_entropy(logits, targets))
    base = ReIDLoss(triplet_weight=1.0)
    loss, parts = STDLoss(lam=0.5, base=base)((logits, features), targets, teacher_features=teacher)
    expected = 0.5 * base((logits, features), targets)[0] + 0.5 * (features - teacher).abs().mean()
    assert torch.allclose(loss, expected) and "triplet" in parts


def test_errors():
    for lam in (-0.1, 1.5, True, "0.8"):
        with pytest.raises(ValueError, match="lam must be a number in \\[0, 1\\]"):
            STDLoss(lam=lam)
    with pytest.raises(TypeError, match="teacher must be callable"):
        STDLoss(teacher=3)
    with pytest.raises(ValueError, match="needs a teacher"):
        STDLoss()((torch.zeros(2, 3), torch.zeros(2, 4)), torch.zeros(2, dtype=torch.long), torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="feature sizes must match"):
        STDLoss()(
            (torch.zeros(2, 3), torch.zeros(2, 4)), torch.zeros(2, dtype=torch.long), teacher_features=torch.zeros(2, 5)
        )
    student = models.BackboneNet(models.resnet34().stages(), 3, input_size=SIZE)
    teacher = models.PTLNet(models.resnet34().stages(), 3, input_size=SIZE, feature_dim=256)
    with pytest.raises(ValueError, match="student's feature size \\(512\\) differs from the teacher's \\(256\\)"):
        check_feature_sizes(student, FrozenTeacher(teacher))
    with pytest.raises(TypeError, match="nn.Module"):
        FrozenTeacher(lambda x: x)


class TinyPTL(models.HeadedNet):
    """A small network with a BConv-Cell, dropout and BatchNorm: everything eval mode changes."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.cell = BConvCell(3, 8, 3, stride=2)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.BatchNorm2d(16), torch.nn.ReLU())
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(16, num_classes))
        self.feature_dim = 16

    def forward_features(self, x):
        return self.body(self.cell(x)).mean((2, 3))


def test_teacher_is_frozen_in_eval_mode_through_an_epoch(tmp_path):
    torch.manual_seed(0)
    teacher_net, student = TinyPTL(), TinyPTL()
    teacher_net.train()  # FrozenTeacher must switch it to eval itself
    before = {k: v.clone() for k, v in teacher_net.state_dict().items()}
    modes = []
    teacher_net.register_forward_pre_hook(
        lambda module, args: modes.append([m.training for m in module.modules()] + [torch.is_grad_enabled()])
    )
    teacher = FrozenTeacher(teacher_net)
    check_feature_sizes(student, teacher)
    images, labels = torch.randn(24, 3, *SIZE), torch.arange(24) % 4
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=8)
    trainer = Trainer(
        student,
        loader,
        TrainConfig(epochs=1, out_dir=str(tmp_path), progress=False, save_every=0),
        method=STD(teacher, 0.8),
        device="cpu",
    )
    history = trainer.fit()
    assert len(modes) == 3 and not any(any(flags) for flags in modes)  # eval everywhere, no autograd
    assert all(p.grad is None and not p.requires_grad for p in teacher_net.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher_net.state_dict().items())  # BN statistics too
    assert teacher_net.cell.states is None  # eval forwards start from zeros and store nothing
    assert history[0]["l1"] > 0 and any(p.grad is not None for p in student.parameters())
    # the features it gives are the eval-mode features of the network
    assert torch.equal(teacher(images[:4]), teacher_net.eval()(images[:4]))
