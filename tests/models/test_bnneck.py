import pytest
import torch
from torch import nn

from ptl_ext.models import BackboneNet, BNNeckHead, create_model, make_head


def _net(head, classes=7):
    torch.manual_seed(0)
    stages = [nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()), nn.Sequential(nn.Conv2d(8, 12, 3, 2, 1))]
    return BackboneNet(stages, classes, head=head, input_size=(16, 16))


@pytest.mark.parametrize("head, after", [("bnneck", True), ("bnneck_pre", False)])
def test_bnneck_shapes_and_eval_feature(head, after):
    net = _net(head)
    assert isinstance(net.head, BNNeckHead)
    x = torch.randn(6, 3, 16, 16)
    logits, features = net(x, return_features=True)
    assert logits.shape == (6, 7) and features.shape == (6, 12)
    assert net(x).shape == (6, 7)  # training: logits
    net.eval()
    pooled = net.forward_features(x)
    bn = net.head.bn
    normalised = (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    expected = normalised if after else pooled
    torch.testing.assert_close(net(x), expected)
    # the triplet feature of return_features stays the pooled one, the logits come from the normalised one
    logits, features = net(x, return_features=True)
    torch.testing.assert_close(features, pooled)
    torch.testing.assert_close(logits, normalised @ net.head.classifier.weight.t())


def test_bnneck_parameters():
    head = make_head("bnneck", 16, 5)
    assert head.classifier.bias is None and head.classifier.weight.shape == (5, 16)
    assert not head.bn.bias.requires_grad and head.bn.weight.requires_grad
    assert head.classifier.weight.std() < 0.01
    with pytest.raises(ValueError, match="no hidden layers and no dropout"):
        make_head("bnneck", 16, 5, dropout=0.5)
    with pytest.raises(ValueError, match="eval_feature"):
        BNNeckHead(16, 5, "middle")


def test_bnneck_through_the_zoo():
    net = create_model("ptl_mobilenet_v2", 4, (64, 64), head="bnneck")
    assert isinstance(net.head, BNNeckHead) and net.head.in_features == net.feature_dim
    with pytest.raises(ValueError, match="bnneck"):
        create_model("mobilenet_v2", 4, (64, 64), head="neck")


def test_every_declared_head_name_is_built():
    """The torch-free names (the CLI's choices) and the heads make_head builds are the same set."""
    from ptl_ext.models._registry import HEAD_NAMES
    from ptl_ext.models.heads import BNNECK_HEADS, HEADS

    assert sorted(HEAD_NAMES) == sorted([*HEADS, *BNNECK_HEADS])
    for name in HEAD_NAMES:
        assert isinstance(make_head(name, 16, 5), nn.Module)
