"""PTL networks: shapes, training, parameter counts, checkpoints, and the generic PTLNet machinery."""

import contextlib
import copy
import io
import warnings

import pytest
import torch
from torch import nn

import ptl_ext
from ptl_ext import reference
from ptl_ext.models import (
    BackboneNet,
    PTLDenseNet161,
    PTLNet,
    PTLResNet50,
    densenet161,
    densenet_bc100,
    ptl_densenet_bc100,
    resnet50,
)
from ptl_ext.nn import BConvCell, BConvCellV2, LatentStateCell, reset_states

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")

# name -> (builder, classes, backbone parameters without its classifier, training input size)
# (the ReID nets train at 64×64 so their last BatchNorm still sees 8 values per channel)
NETS = {
    "ptl_resnet50": (lambda: PTLResNet50(751), 751, 25_557_032 - 2048 * 1000 - 1000, (64, 64)),
    "ptl_resnet50_v2": (lambda: PTLResNet50(751, v2=True), 751, 25_557_032 - 2048 * 1000 - 1000, (64, 64)),
    "ptl_densenet161": (lambda: PTLDenseNet161(702), 702, 28_681_000 - 2208 * 1000 - 1000, (64, 64)),
    "ptl_densenet161_v2": (lambda: PTLDenseNet161(702, v2=True), 702, 28_681_000 - 2208 * 1000 - 1000, (64, 64)),
    "ptl_densenet_bc100": (lambda: ptl_densenet_bc100(10), 10, 769_162 - 342 * 10 - 10, (32, 32)),
    "ptl_densenet_bc100_v2": (lambda: ptl_densenet_bc100(100, v2=True), 100, 769_162 - 342 * 10 - 10, (32, 32)),
}


@pytest.fixture(scope="module")
def nets():
    """One instance of each network, built lazily and shared by the tests of this module."""
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            cache[name] = NETS[name][0]()
        return cache[name]

    return get


def count(module):
    return sum(p.numel() for p in module.parameters())


def side_stream_count(model):
    """Parameters of cells and fuse blocks computed from the widths alone."""
    ins = (3, model.cell_channels[0]) + model.fuse_channels
    total = 0
    for i, o, cell in zip(ins, model.cell_channels, model.cells):
        total += (o * i * 9 + 4 * o * 2 * i * 9) if isinstance(cell, BConvCellV2) else 4 * o * i * 9
    stage_ch = [s[0] for s in model.stage_shapes]
    for x_ch, y_ch, o in zip(stage_ch, model.cell_channels[1:], model.fuse_channels + (model.feature_dim,)):
        total += (x_ch + y_ch) * o + 2 * o
    return total


def head_count(model, classes):
    widths = [model.feature_dim] + [m.out_features for m in model.head.modules() if isinstance(m, nn.Linear)]
    hidden = widths[1:-1]
    has_bn = any(isinstance(m, nn.BatchNorm1d) for m in model.head.modules())
    weights = sum(a * b for a, b in zip(widths, widths[1:]))
    # hidden layers: BatchNorm (weight, bias) replaces the Linear bias when present
    return weights + classes + sum(hidden) * (2 if has_bn else 1)


@contextlib.contextmanager
def dropout_off(model):
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    for m in drops:
        m.eval()
    try:
        yield
    finally:
        for m in drops:
            m.train()


@pytest.mark.parametrize("name", list(NETS))
def test_parameter_counts(nets, name):
    model, (_, classes, backbone, _) = nets(name), NETS[name]
    total = count(model)
    baseline = backbone + head_count(model, classes)
    print(f"{name}: {total:,} parameters (backbone + head {baseline:,}, x{total / baseline:.2f})")
    assert count(model.stages) == backbone
    assert count(model.head) == head_count(model, classes)
    assert count(model.cells) + count(model.fuses) + count(model.final_fuse) == side_stream_count(model)
    assert total == baseline + side_stream_count(model)


@pytest.mark.parametrize("size", [(256, 128), (32, 32)], ids=["reid256x128", "cifar32x32"])
@pytest.mark.parametrize("name", list(NETS))
def test_output_shapes_train_and_eval(nets, name, size):
    model, classes = nets(name), NETS[name][1]
    x = torch.randn(2, 3, *size)
    reset_states(model)
    with torch.no_grad():
        model.train()
        assert model(x).shape == (2, classes)
        model.eval()
        logits, features = model(x, return_features=True)
        model.train()
    assert features.shape == (2, model.feature_dim)
    assert logits.shape == (2, classes)
    reset_states(model)


@pytest.mark.parametrize("name", list(NETS))
def test_loss_decreases_on_a_tiny_batch(nets, name):
    model, (_, classes, _, size) = nets(name), NETS[name]
    torch.manual_seed(1)
    x, labels = torch.randn(2, 3, *size), torch.tensor([0, classes - 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def loss_now():
        reset_states(model)
        with torch.no_grad(), dropout_off(model):
            return nn.functional.cross_entropy(model(x), labels).item()

    before = loss_now()
    reset_states(model)
    for _ in range(4):
        logits, features = model(x, return_features=True)
        assert features.shape == (2, model.feature_dim)
        loss = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = loss_now()
    assert after < before, (before, after)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    reset_states(model)


@pytest.mark.parametrize("name", list(NETS))
def test_state_dict_round_trip(nets, name):
    model = nets(name)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert not any("state" in k for k in model.state_dict())
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for tensor in twin.state_dict().values():
            tensor.zero_()
    buffer.seek(0)
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(2, 3, 32, 32)
    model.eval(), twin.eval()
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=0, atol=0)
    model.train()


def assert_stages_hold(model, backbone):
    for i, (mine, theirs) in enumerate(zip(model.stages, backbone.stages())):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys(), i
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=f"stage {i} {key}")


def test_ptl_resnet50_loads_a_torchvision_checkpoint(tmp_path):
    torch.manual_seed(5)
    backbone = resnet50()
    path = tmp_path / "resnet50-torchvision.pth"
    torch.save({k: v for k, v in backbone.state_dict().items() if "num_batches" not in k}, path)
    model = PTLResNet50(751, pretrained=str(path))
    assert_stages_hold(model, backbone)
    assert model.stages[4][0].conv2.stride == (1, 1)  # last_stride=1 by default


def test_ptl_densenet161_loads_an_old_format_checkpoint(tmp_path):
    torch.manual_seed(5)
    backbone = densenet161()
    old = {}
    for key, value in backbone.state_dict().items():
        if "denselayer" in key:
            for name in ("norm1", "norm2", "conv1", "conv2"):
                key = key.replace(f".{name}.", f".{name[:-1]}.{name[-1]}.")
        old[key] = value
    path = tmp_path / "densenet161-old.pth"
    torch.save(old, path)
    model = PTLDenseNet161(751, pretrained=path, v2=True)
    assert_stages_hold(model, backbone)


def test_ptl_densenet_bc100_loads_a_checkpoint_and_reports_mismatches(tmp_path):
    torch.manual_seed(5)
    backbone = densenet_bc100()
    path = tmp_path / "bc100.pth"
    torch.save(backbone.state_dict(), path)
    assert_stages_hold(ptl_densenet_bc100(10, pretrained=path), backbone)
    with pytest.raises(RuntimeError, match=r"missing keys \(\d+\): features\.conv0\.weight"):
        torch.save({k: v for k, v in backbone.state_dict().items() if k != "features.conv0.weight"}, path)
        ptl_densenet_bc100(10, pretrained=path)
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        ptl_densenet_bc100(10, pretrained=tmp_path / "absent.pth")


def test_eval_feature_does_not_depend_on_other_images(nets):
    model = nets("ptl_densenet_bc100_v2")
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        model(torch.randn(3, 3, 32, 32))  # leaves a training state
        model.eval()
        alone = model(x[:1])
        together = model(x)
        model.train()
    torch.testing.assert_close(together[:1], alone, rtol=1e-5, atol=1e-6)
    reset_states(model)


def test_ptl_networks_are_public_at_top_level():
    assert ptl_ext.PTLResNet50 is PTLResNet50 and ptl_ext.PTLDenseNet161 is PTLDenseNet161
    assert ptl_ext.models.PTLNet is PTLNet and ptl_ext.nn.BConvCell is BConvCell


# ---- the generic machinery, on a small staged backbone --------------------------------------------


def toy_stages(pool_last=False):
    torch.manual_seed(0)
    last = [nn.Conv2d(16, 32, 3, 1, 1), nn.AvgPool2d(2)] if pool_last else [nn.Conv2d(16, 32, 3, 2, 1)]
    return [
        nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(3, 2, 1)),
        nn.Sequential(nn.Conv2d(8, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU()),
        nn.Sequential(*last, nn.BatchNorm2d(32), nn.ReLU()),
    ]


def toy(**kwargs):
    kwargs.setdefault("input_size", (32, 16))
    kwargs.setdefault("head_hidden", (16,))
    kwargs.setdefault("dropout", 0.0)  # deterministic training forwards to compare
    stages = toy_stages(kwargs.pop("pool_last", False))
    torch.manual_seed(1)
    return PTLNet(stages, 5, **kwargs)


def test_strides_are_derived_from_a_dry_run_and_widths_default():
    model = toy()
    assert model.stage_shapes == [(8, 8, 4), (16, 8, 4), (32, 4, 2)]
    assert model.cell_strides == (2, 2, 1, 2)
    assert model.cell_channels == (16, 32, 16, 16) and model.fuse_channels == (8, 16)
    assert [c.stride for c in model.cells] == [2, 2, 1, 2]
    assert all(m.training for m in model.modules())  # the dry run restored training mode
    assert all(m.num_batches_tracked == 0 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    model = toy(cell_channels=(4, 4, 4, 4), fuse_channels=(4, 4), feature_dim=12, v2=True)
    assert model.feature_dim == 12 and model.head.in_features == 12
    assert all(isinstance(c, BConvCellV2) for c in model.cells)
    assert model(torch.randn(2, 3, 32, 16)).shape == (2, 5)
    assert reset_states(model) == 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell_channels=(4, 4, 4)), "cell_channels needs 4 widths"),
        (dict(fuse_channels=(4,)), "fuse_channels needs 2 widths"),
        (dict(feature_dim=0), "feature_dim"),
        (dict(input_size=(32,)), "input_size"),
    ],
)
def test_bad_ptlnet_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy(**kwargs)


def test_unreachable_stage_size_is_an_error():
    with pytest.raises(ValueError, match="stage 1's size"):
        PTLNet([nn.Conv2d(3, 4, 3, 2, 1), nn.Upsample(scale_factor=2)], 3, input_size=(16, 16))


def test_input_size_the_strides_do_not_fit_is_a_clear_error():
    model = toy(pool_last=True)
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, 5)
    reset_states(model)
    with pytest.raises(RuntimeError, match="FuseBlock: backbone map"):
        model(torch.randn(2, 3, 36, 20))


def test_update_fn_reaches_every_cell_and_changes_nothing_numerically():
    fused, ref = toy(v2=True), toy(v2=True, update_fn=reference.bconv_cell_update)
    assert all(c.update_fn is reference.bconv_cell_update for c in ref.cells)
    x = torch.randn(2, 3, 32, 16)
    for _ in range(2):
        torch.testing.assert_close(ref(x), fused(x), rtol=1e-5, atol=1e-6)


def test_backbone_net_shares_the_output_convention():
    model = BackboneNet(toy_stages(), 5, head_hidden=(16,), input_size=(32, 16))
    x = torch.randn(2, 3, 32, 16)
    assert model(x).shape == (2, 5) and model.feature_dim == 32
    logits, features = model.eval()(x, return_features=True)
    assert logits.shape == (2, 5) and features.shape == (2, 32)
    assert not any(isinstance(m, LatentStateCell) for m in model.modules())


def test_torch_compile_fullgraph_matches_eager():
    """BConvCellV2 under compile is covered in tests/nn; here the network around the cells."""
    eager = toy()
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model, backend="aot_eager", fullgraph=True)
    xs = [torch.randn(2, 3, 32, 16) for _ in range(2)]
    for x in xs:
        torch.testing.assert_close(compiled(x), eager(x), rtol=1e-5, atol=1e-6)
    compiled(xs[0]).sum().backward()
    eager(xs[0]).sum().backward()
    torch.testing.assert_close(
        compiled_model.cells[2].conv.weight.grad, eager.cells[2].conv.weight.grad, rtol=1e-4, atol=1e-6
    )
    compiled_model.eval(), eager.eval()
    torch.testing.assert_close(compiled(xs[1]), eager(xs[1]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("v2", [False, True])
def test_channels_last_and_bf16_autocast_training_step(v2):
    model = toy(v2=v2).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(4, 3, 32, 16).to(memory_format=torch.channels_last)
    for _ in range(2):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        loss = nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1, 2, 3]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logits.dtype == torch.bfloat16 and torch.isfinite(loss)
    assert all(s.dtype == torch.bfloat16 for c in model.cells for s in c.states)
    with torch.no_grad():
        features = model.eval()(x)
    assert features.dtype == torch.float32 and features.shape == (4, 32)


def test_ddp_training_with_carried_state(tmp_path):
    """Single-rank DDP: every parameter (V2's transposed conv too) gets a gradient each step, states stay local."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(toy(v2=True))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x, labels = torch.randn(2, 3, 32, 16), torch.tensor([0, 1])
        for step in range(3):
            if step == 1:
                reset_states(model)
            loss = nn.functional.cross_entropy(model(x), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert all(c.states is not None for c in model.module.cells)
        assert not any("state" in k for k in model.state_dict())
    finally:
        dist.destroy_process_group()
