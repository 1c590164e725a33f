"""Backbones: torchvision parameter counts and key names, stage split, last_stride, local checkpoint loading."""

import pytest
import torch

from ptl_ext.models import densenet121, densenet161, densenet_bc100, resnet34, resnet50, resnet101
from ptl_ext.models.weights import densenet_legacy_keys, read_state_dict

# torchvision's counts with the 1000-class classifier; DenseNet-BC-100 (k=12, 10 classes) as in the paper's 0.8 M.
PARAMS = {
    resnet34: 21_797_672,
    resnet50: 25_557_032,
    resnet101: 44_549_160,
    densenet121: 7_978_856,
    densenet161: 28_681_000,
    densenet_bc100: 769_162,
}


def count(model):
    return sum(p.numel() for p in model.parameters())


def densenet_bc100_count(classes=10):
    """DenseNet-BC-100 parameters by hand: 3×3 stem, 3 blocks × 16 bottleneck layers, 2 transitions."""
    total, ch, growth = 3 * 24 * 9, 24, 12
    for block in range(3):
        for _ in range(16):
            total += 2 * ch + ch * 4 * growth + 2 * 4 * growth + 4 * growth * growth * 9
            ch += growth
        if block < 2:
            total += 2 * ch + ch * (ch // 2)
            ch //= 2
    return total + 2 * ch + ch * classes + classes


@pytest.fixture(scope="module")
def r50():
    torch.manual_seed(0)
    return resnet50()


@pytest.fixture(scope="module")
def d161():
    torch.manual_seed(0)
    return densenet161()


@pytest.mark.parametrize("builder", list(PARAMS), ids=lambda b: b.__name__)
def test_parameter_counts_equal_torchvision(builder):
    n = count(builder())
    print(f"{builder.__name__}: {n:,} parameters")
    assert n == PARAMS[builder]


def test_densenet_bc100_count_matches_hand_count():
    assert PARAMS[densenet_bc100] == densenet_bc100_count()


def test_resnet_keys_are_torchvision_names(r50):
    keys = list(r50.state_dict())
    for key in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv1.weight",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.num_batches_tracked",
        "layer3.5.bn3.bias",
        "layer4.2.conv3.weight",
        "fc.weight",
        "fc.bias",
    ]:
        assert key in keys
    assert keys[0] == "conv1.weight" and keys[-1] == "fc.bias"
    assert len(keys) == 320  # 161 parameters + 159 BatchNorm buffers in torchvision's ResNet-50


def test_densenet_keys_are_torchvision_names(d161):
    keys = set(d161.state_dict())
    for key in [
        "features.conv0.weight",
        "features.norm0.running_mean",
        "features.denseblock1.denselayer1.norm1.weight",
        "features.denseblock1.denselayer6.conv2.weight",
        "features.transition1.norm.weight",
        "features.transition1.conv.weight",
        "features.denseblock4.denselayer24.conv1.weight",
        "features.norm5.bias",
        "classifier.weight",
    ]:
        assert key in keys


def stage_shapes(model, size):
    shapes = []
    with torch.no_grad():
        y = torch.zeros(1, 3, *size)
        for stage in model.stages():
            y = stage(y)
            shapes.append(tuple(y.shape[1:]))
    return shapes


def test_resnet_shapes_and_last_stride(r50):
    r50.eval()
    with torch.no_grad():
        assert r50(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
    assert stage_shapes(r50, (64, 32)) == [(64, 16, 8), (256, 16, 8), (512, 8, 4), (1024, 4, 2), (2048, 2, 1)]
    assert stage_shapes(resnet34(last_stride=1).eval(), (256, 128))[-1] == (512, 16, 8)
    with pytest.raises(ValueError, match="last_stride"):
        resnet50(last_stride=3)


@pytest.mark.parametrize(
    "builder, size", [(densenet121, 32), (densenet_bc100, 32)], ids=["densenet121", "densenet_bc100"]
)
def test_densenet_stages_compose_to_forward(builder, size):
    torch.manual_seed(0)
    model = builder().eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = x
        for stage in model.stages():
            y = stage(y)
        torch.testing.assert_close(model.classifier(y.mean((2, 3))), model(x))


def test_densenet_bc100_stage_shapes_for_cifar():
    model = densenet_bc100(num_classes=100).eval()
    assert stage_shapes(model, (32, 32)) == [(24, 32, 32), (108, 16, 16), (150, 8, 8), (342, 8, 8)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def test_load_torchvision_resnet_checkpoint(r50, tmp_path):
    path = tmp_path / "resnet50.pth"
    state = {
        k: v for k, v in r50.state_dict().items() if not k.endswith("num_batches_tracked")
    }  # like torchvision's files
    torch.save(state, path)
    torch.manual_seed(1)
    loaded = resnet50(pretrained=str(path))
    assert_same_state(loaded, r50)


def test_load_old_format_densenet_checkpoint(d161, tmp_path):
    old = {}
    for key, value in d161.state_dict().items():
        for name in ("norm1", "norm2", "relu1", "relu2", "conv1", "conv2"):
            key = key.replace(f".{name}.", f".{name[:-1]}.{name[-1]}.") if "denselayer" in key else key
        old[key] = value
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    assert densenet_legacy_keys(old).keys() == d161.state_dict().keys()
    path = tmp_path / "densenet161-old.pth"
    torch.save(old, path)
    torch.manual_seed(1)
    assert_same_state(densenet161(pretrained=path), d161)


def test_classifier_of_another_size_stays_fresh(r50, tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(r50.state_dict(), path)
    model = resnet50(pretrained=path, num_classes=10)
    assert model.fc.weight.shape == (10, 2048)
    torch.testing.assert_close(model.layer4[2].conv3.weight, r50.layer4[2].conv3.weight)


def test_checkpoint_wrappers_and_ddp_prefix(tmp_path):
    model = densenet_bc100()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 3}, path)
    assert read_state_dict(path).keys() == model.state_dict().keys()
    assert_same_state(densenet_bc100(pretrained=path), model)


def test_missing_checkpoint_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        resnet34(pretrained=tmp_path / "nowhere.pth")
    with pytest.raises(TypeError, match="pretrained"):
        resnet34(pretrained=123)


def test_mismatched_keys_are_listed(tmp_path):
    model = densenet_bc100()
    state = model.state_dict()
    del state["features.conv0.weight"]
    state["features.extra.weight"] = torch.zeros(1)
    state["features.norm5.weight"] = torch.zeros(7)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(RuntimeError) as info:
        densenet_bc100(pretrained=path)
    message = str(info.value)
    assert "missing keys (1): features.conv0.weight" in message
    assert "unexpected keys (1): features.extra.weight" in message
    assert "features.norm5.weight (7,) vs (342,)" in message


def test_not_a_state_dict_is_a_clear_error(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match="state dict"):
        resnet34(pretrained=path)
