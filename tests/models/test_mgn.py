"""MGN and MGN+PTL: parameter counts from the architecture, branch initialisation, outputs, pooling, cell states."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ptl_ext.models import MGN, MGNPTL, MGNOutput, resnet50
from ptl_ext.models.mgn import mgn_pieces
from ptl_ext.nn import BConvCell, BConvCellV2, LatentStateCell, reset_states

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")

CLASSES = 751
SIZE = (96, 32)  # branch maps 6×2 (p2, p3) and 3×1 (p1): equal 2- and 3-row stripes


def count(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A ResNet-50 checkpoint (random weights, non-trivial BN statistics) in torchvision's format."""
    torch.manual_seed(0)
    backbone = resnet50()
    for m in backbone.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    path = tmp_path_factory.mktemp("ckpt") / "resnet50.pth"
    torch.save(backbone.state_dict(), path)
    return path, backbone.state_dict()


@pytest.fixture(scope="module")
def mgn(checkpoint):
    torch.manual_seed(1)
    return MGN(CLASSES, pretrained=checkpoint[0])


@pytest.fixture(scope="module")
def mgn_ptl(checkpoint):
    torch.manual_seed(2)
    return MGNPTL(CLASSES, pretrained=checkpoint[0])


def expected_mgn_count(classes, piece_ch=2048, width=256, pieces=8):
    """Trunk (stem..layer3[0]) + 3 × (layer3[1:] + layer4) + 8 reductions (conv, BN) + 8 classifiers."""
    r = resnet50()
    trunk = count(r.conv1, r.bn1, r.layer1, r.layer2, r.layer3[0])
    branch = count(*r.layer3[1:], r.layer4)
    return trunk + 3 * branch + pieces * (piece_ch * width + 2 * width) + pieces * (width * classes + classes)


def side_stream_count():
    """BConv-Cells (one bias-free 3×3 conv to 4·out each) and fuse blocks (bias-free 1×1 conv + BN)."""
    cells = [(3, 16), (16, 32), (64, 64), (128, 256), (256, 512)] + [(512, 128)] * 3
    fuses = [(64 + 32, 64), (256 + 64, 128), (512 + 256, 256), (1024 + 512, 512)]
    return sum(4 * o * i * 9 for i, o in cells) + sum(i * o + 2 * o for i, o in fuses)


def test_parameter_counts(mgn, mgn_ptl):
    total, total_ptl = count(mgn), count(mgn_ptl)
    print(f"MGN {total:,}  MGN+PTL {total_ptl:,} (side stream and wider reductions {total_ptl - total:,})")
    assert total == expected_mgn_count(CLASSES)
    assert count(mgn.head) == 8 * (256 * CLASSES + CLASSES)
    # MGN+PTL: the side stream, and 8 reductions that read 2048 + 128 channels
    assert count(mgn_ptl.cells, mgn_ptl.fuses, mgn_ptl.branch_cells) == side_stream_count()
    assert total_ptl == expected_mgn_count(CLASSES, piece_ch=2048 + 128) + side_stream_count()
    assert mgn.feature_dim == mgn_ptl.feature_dim == 2048


def test_branches_start_from_the_backbone_checkpoint(checkpoint):
    path, state = checkpoint
    for model in (MGN(CLASSES, pretrained=path), MGNPTL(CLASSES, pretrained=path)):  # fresh: BN statistics untouched
        own = model.state_dict()
        trunk = {
            "stages.0.conv1": "conv1",
            "stages.0.bn1": "bn1",
            "stages.1": "layer1",
            "stages.2": "layer2",
            "stages.3": "layer3.0",
        }
        for prefix, source in trunk.items():
            keys = [k for k in own if k.startswith(prefix + ".")]
            assert keys
            for key in keys:
                assert torch.equal(own[key], state[source + key[len(prefix) :]]), key
        for b in range(3):
            keys = [k for k in own if k.startswith(f"branches.{b}.")]
            assert len(keys) == len(
                [k for k in state if k.startswith(("layer3.", "layer4.")) and not k.startswith("layer3.0.")]
            )
            for key in keys:
                rest = key[len(f"branches.{b}.") :]
                layer, index, tail = rest.split(".", 2)
                source = f"{layer}.{int(index) + 1 if layer == 'layer3' else int(index)}.{tail}"
                assert torch.equal(own[key], state[source]), key
        # three independent copies, not shared tensors
        pointers = {model.branches[b].layer4[0].conv1.weight.data_ptr() for b in range(3)}
        assert len(pointers) == 3
        strides = [(br.layer4[0].conv2.stride, br.layer4[0].downsample[0].stride) for br in model.branches]
        assert strides == [((2, 2), (2, 2)), ((1, 1), (1, 1)), ((1, 1), (1, 1))]


@pytest.mark.parametrize("name", ["mgn", "mgn_ptl"])
def test_training_and_eval_outputs(request, name):
    model = request.getfixturevalue(name)
    torch.manual_seed(3)
    x = torch.randn(4, 3, *SIZE)
    reset_states(model)
    model.train()
    with torch.no_grad():
        out = model(x, return_features=True)
        reset_states(model)
        logits = model(x)
    reset_states(model)
    assert isinstance(out, MGNOutput) and isinstance(out, tuple)
    assert len(out.piece_logits) == 8 and all(t.shape == (4, CLASSES) for t in out.piece_logits)
    assert len(out.global_features) == 3 and all(t.shape == (4, 256) for t in out.global_features)
    assert out.features.shape == (4, 2048) and out[0].shape == (4, CLASSES)
    torch.testing.assert_close(out.logits, torch.stack(out.piece_logits).mean(0))
    torch.testing.assert_close(logits, out.logits)
    # the test feature is the 8 reductions, globals first
    torch.testing.assert_close(out.features[:, :768], torch.cat(out.global_features, 1))
    assert (out.features >= 0).all()  # after ReLU
    model.eval()
    with torch.no_grad():
        feature = model(x)
        both = model(x, return_features=True)
        single = model(x[1:2])
    model.train()
    assert feature.shape == (4, 2048)
    torch.testing.assert_close(both.features, feature)
    torch.testing.assert_close(single, feature[1:2], rtol=1e-4, atol=1e-5)  # no dependence on the batch


def test_stripe_pooling():
    torch.manual_seed(4)
    maps = [torch.randn(2, 5, 3, 1), torch.randn(2, 5, 6, 2), torch.randn(2, 5, 6, 2)]
    pieces = mgn_pieces(maps)
    assert len(pieces) == 8 and all(p.shape == (2, 5) for p in pieces)
    expected = [m.amax((2, 3)) for m in maps]
    expected += [maps[1][:, :, r : r + 3].amax((2, 3)) for r in (0, 3)]
    expected += [maps[2][:, :, r : r + 2].amax((2, 3)) for r in (0, 2, 4)]
    for got, want in zip(pieces, expected):
        assert torch.equal(got, want)
    # 384×128 inputs: 24×8 maps, 12- and 8-row stripes as the released MaxPool2d kernels
    big = torch.randn(1, 3, 24, 8)
    assert torch.equal(mgn_pieces([big[:, :, :12, :4], big, big])[6], big[:, :, 8:16].amax((2, 3)))


@pytest.mark.parametrize("height", [6, 7, 8, 12, 13, 24])
def test_pieces_equal_adaptive_max_pooling(height):
    """The slices cover adaptive_max_pool2d's windows for any height (divisible by the stripes or not), so
    the features are the same values as the pooling the ONNX exporter may lack (a maximum is exact)."""
    torch.manual_seed(height)
    maps = [torch.randn(2, 5, height, 3) for _ in range(3)]
    want = [F.adaptive_max_pool2d(m, 1).flatten(1) for m in maps]
    for m, n in zip(maps, (1, 2, 3)):
        if n > 1:
            want += list(F.adaptive_max_pool2d(m, (n, 1)).flatten(2).unbind(2))
    for got, expected in zip(mgn_pieces(maps, (1, 2, 3)), want, strict=True):
        assert torch.equal(got, expected)


def test_side_stream_layout(mgn_ptl):
    cells = [(c.in_ch, c.out_ch, c.stride) for c in mgn_ptl.cells]
    assert cells == [(3, 16, 2), (16, 32, 2), (64, 64, 1), (128, 256, 2), (256, 512, 2)]
    branch_cells = [(c.in_ch, c.out_ch, c.stride) for c in mgn_ptl.branch_cells]
    assert branch_cells == [(512, 128, 2), (512, 128, 1), (512, 128, 1)]
    assert [f.conv.out_channels for f in mgn_ptl.fuses] == [64, 128, 256, 512]
    assert all(r[0].in_channels == 2176 and r[0].out_channels == 256 for r in mgn_ptl.reductions)
    assert all(isinstance(c, BConvCell) for c in [*mgn_ptl.cells, *mgn_ptl.branch_cells])
    v2 = MGNPTL(10, v2=True)
    assert all(isinstance(c, BConvCellV2) for c in [*v2.cells, *v2.branch_cells])
    with torch.no_grad():
        for size in ((48, 16), (37, 19)):  # any size: cells and ResNet both halve n to ceil(n / 2)
            reset_states(v2)
            assert v2(torch.randn(2, 3, *size)).shape == (2, 10)


def test_cell_state_rules_inside_mgn_ptl(mgn_ptl):
    model = mgn_ptl
    cells = [m for m in model.modules() if isinstance(m, LatentStateCell)]
    assert len(cells) == 8 and reset_states(model) == 8
    keys = set(model.state_dict())
    torch.manual_seed(5)
    x = torch.randn(4, 3, *SIZE)
    model.train()
    with torch.no_grad():
        first = model(x)
        assert all(c.states is not None and c.states[0].shape[0] == 4 and not c.states[0].requires_grad for c in cells)
        second = model(x)  # the state carried from the first forward changes the output
        assert not torch.allclose(first, second)
        carried = [c.states[0].clone() for c in cells]
        # eval starts from zeros and leaves the training state untouched
        model.eval()
        with_state = model(x)
        for cell, before in zip(cells, carried):
            assert torch.equal(cell.states[0], before)
        reset_states(model)
        torch.testing.assert_close(model(x), with_state)
        model.train()
        # a reset brings back the first forward's output; a smaller batch uses the first rows
        torch.testing.assert_close(model(x), first)
        assert model(x[:2]).shape == (2, CLASSES)
    assert set(model.state_dict()) == keys
    reset_states(model)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        MGN(0)
    with pytest.raises(ValueError, match="feature_dim"):
        MGNPTL(10, feature_dim=True)


def test_shared_reduction_is_one_module_used_by_all_pieces(mgn):
    torch.manual_seed(0)
    shared = MGN(CLASSES, reductions="shared")
    assert len(shared.reductions) == 1
    assert count(mgn) - count(shared) == 7 * count(mgn.reductions[0])  # the 7 reductions MGN's paper adds
    shared.eval()
    with torch.no_grad():
        out = shared(torch.randn(2, 3, *SIZE), return_features=True)
        pieces = mgn_pieces(shared.branch_maps(torch.randn(1, 3, *SIZE)))
    assert out.features.shape == (2, 8 * 256) and len(pieces) == 8
    with pytest.raises(ValueError, match="reductions must be one of"):
        MGN(CLASSES, reductions="two")
