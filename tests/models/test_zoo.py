"""The model zoo: every name builds, old names build the same networks, and the registry's errors.

Most networks are built on the ``meta`` device (shapes only, no memory or initialisation cost).
"""

import functools
import warnings

import pytest
import torch

from ptl_ext import models
from ptl_ext.models import (
    ALIASES,
    MGN,
    MGNPTL,
    count_parameters,
    create_model,
    is_model,
    list_models,
    model_info,
    register_model,
)
from ptl_ext.nn import BConvCellV2

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")

BACKBONES = ("resnet34", "resnet50", "resnet101", "densenet121", "densenet161", "densenet_bc100", "mobilenet_v2")
SIZE = (96, 32)


@functools.cache
def meta_model(name, v2=False):
    """``create_model(name, 5, SIZE, v2=v2)`` on the meta device, built once for all tests."""
    with torch.device("meta"):
        return create_model(name, 5, SIZE, v2=v2)


def shapes(model):
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def test_names():
    assert {"mgn", "mgn_ptl"} <= set(list_models(aliases=True))
    assert all(f"ptl_v2_{name}" in list_models() for name in BACKBONES)


def test_ptl_v2_name_is_v2():
    model = create_model("ptl_v2_densenet_bc100", 10, (32, 32), head="cifar")
    assert all(isinstance(cell, BConvCellV2) for cell in model.cells)


def test_mgn_builds_and_checks():
    model = create_model("mgn_ptl", 7, (96, 32), v2=True)
    assert type(model) is MGNPTL and isinstance(model.cells[0], BConvCellV2) and model.head[0].out_features == 7
    assert type(create_model("mgn", 7, (96, 32), dropout=0)) is MGN
    with pytest.raises(ValueError, match="no 'cifar' head"):
        create_model("mgn", 10, (32, 32), head="cifar")
    with pytest.raises(ValueError, match="no dropout"):
        create_model("mgn_ptl", 10, (96, 32), dropout=0.5)
    with pytest.raises(ValueError, match="v2 applies"):
        create_model("mgn", 10, (96, 32), v2=True)


def test_one_naming_scheme():
    expected = {prefix + name for name in (*BACKBONES, "mgn") for prefix in ("", "ptl_", "ptl_v2_")}
    assert set(list_models()) == expected and list_models() == sorted(expected)
    assert list_models("ptl_v2_*") == sorted(f"ptl_v2_{name}" for name in (*BACKBONES, "mgn"))
    assert list_models("*mgn*", aliases=True) == ["mgn", "mgn_ptl", "ptl_mgn", "ptl_v2_mgn"]
    assert list_models(exclude=("ptl_*", "mgn")) == sorted(BACKBONES)
    assert list_models("ptl_*", exclude=("*densenet*", "*mobilenet*")) == [
        "ptl_mgn",
        "ptl_resnet101",
        "ptl_resnet34",
        "ptl_resnet50",
        "ptl_v2_mgn",
        "ptl_v2_resnet101",
        "ptl_v2_resnet34",
        "ptl_v2_resnet50",
    ]
    assert ALIASES == {"mgn_ptl": "ptl_mgn"}
    assert is_model("mgn_ptl") and is_model("ptl_resnet50") and not is_model("ptl_resnet18")


def test_model_info():
    info = model_info("ptl_v2_resnet50")
    assert (info.name, info.base, info.family, info.ptl, info.v2, info.input_size) == (
        "ptl_v2_resnet50",
        "resnet50",
        "resnet",
        True,
        True,
        (256, 128),
    )
    assert model_info("mgn_ptl").name == "ptl_mgn" and model_info("mgn_ptl", v2=True).name == "ptl_v2_mgn"
    assert model_info("ptl_densenet121", v2=True).name == "ptl_v2_densenet121"
    assert model_info("ptl_v2_densenet121", v2=True).name == "ptl_v2_densenet121"
    for name in list_models():
        info = model_info(name)
        assert info.input_size == ((384, 128) if info.base == "mgn" else (256, 128))
        assert info.base.startswith(info.family) and info.family in ("resnet", "densenet", "mobilenet", "mgn")
        assert (info.ptl, info.v2) == (name.startswith("ptl_"), name.startswith("ptl_v2_"))


@pytest.mark.parametrize("name", list_models())
def test_create_model_builds_every_listed_name(name):
    info = model_info(name)
    model = meta_model(name)
    assert count_parameters(model) > 0
    if info.family == "mgn":
        assert type(model) is (MGNPTL if info.ptl else MGN) and all(fc.out_features == 5 for fc in model.head)
        assert info.v2 == isinstance(getattr(model, "cells", [None])[0], BConvCellV2)
    else:
        assert isinstance(model, models.PTLNet if info.ptl else models.BackboneNet)
        assert model.head.num_classes == 5
        if info.ptl:
            assert all(isinstance(cell, BConvCellV2) == info.v2 for cell in model.cells)


def old_network(name, num_classes, size, v2):
    """What the old ``build_model(name, ...)`` built, written out with the classes directly."""
    if name in ("mgn", "mgn_ptl"):
        return MGN(num_classes) if name == "mgn" else MGNPTL(num_classes, v2=v2)
    if name.startswith("ptl_v2_"):
        name, v2 = "ptl_" + name[len("ptl_v2_") :], True
    base = name.removeprefix("ptl_")
    options = {"last_stride": 1} if base.startswith("resnet") else {}
    common = {"head": "reid", "input_size": size, "dropout": None}
    if name == "ptl_resnet50":
        return models.PTLResNet50(num_classes, v2=v2, **common, **options)
    if name == "ptl_densenet161":
        return models.PTLDenseNet161(num_classes, v2=v2, **common)
    if name == "ptl_densenet_bc100":
        return models.ptl_densenet_bc100(num_classes, v2=v2, **common)
    stages = getattr(models, base)(**options).stages()
    if name.startswith("ptl_"):
        return models.PTLNet(stages, num_classes, v2=v2, **common)
    return models.BackboneNet(stages, num_classes, **common)


OLD_NAMES = [(prefix + name, False) for name in BACKBONES for prefix in ("", "ptl_", "ptl_v2_")]
OLD_NAMES += [(f"ptl_{name}", True) for name in BACKBONES] + [("mgn", False), ("mgn_ptl", False), ("mgn_ptl", True)]


@pytest.mark.parametrize("old, v2", OLD_NAMES)
def test_every_old_name_builds_the_same_network(old, v2):
    built, by_new_name = meta_model(old, v2), meta_model(model_info(old, v2).name)
    with torch.device("meta"):
        expected = old_network(old, 5, SIZE, v2)
    assert type(built) is type(expected) is type(by_new_name)
    assert count_parameters(built) == count_parameters(expected) == count_parameters(by_new_name)
    assert shapes(built) == shapes(expected) == shapes(by_new_name)


def test_create_model_on_the_cpu_runs():
    torch.manual_seed(0)
    model = create_model("ptl_v2_resnet34", 3, (64, 32), last_stride=2).eval()
    assert model(torch.randn(2, 3, 64, 32)).shape == (2, 512)
    assert model.cell_strides[-1] == 2  # last_stride reached the backbone: layer4 halves the map


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"name": "ptl_resnet18"}, ValueError, "unknown model 'ptl_resnet18'; expected one of .*ptl_v2_mgn"),
        ({"name": 50}, TypeError, "model name must be a str"),
        ({"name": "resnet50", "v2": True}, ValueError, "v2 applies to PTL networks"),
        ({"v2": "yes"}, TypeError, "v2 must be true or false"),
        ({"num_classes": 0}, ValueError, "num_classes must be an integer >= 1"),
        ({"num_classes": 2.0}, TypeError, "num_classes must be an integer"),
        ({"input_size": (32,)}, ValueError, "input_size must be a pair"),
        ({"head": "linear"}, ValueError, "head must be one of 'reid', 'rolling_back', 'cifar'"),
        ({"last_stride": 3}, ValueError, "last_stride must be one of 1, 2"),
        ({"dropout": -0.5}, ValueError, "dropout must be >= 0"),
        ({"side_width": 0}, ValueError, "side_width must be > 0"),
        (
            {"name": "resnet34", "side_width": 0.5},
            ValueError,
            "side_width applies to the PTL networks.*not to resnet34",
        ),
        ({"name": "ptl_mgn", "side_width": 0.5}, ValueError, "not to ptl_mgn"),
        ({"head_init": "xavier"}, ValueError, "head_init must be one of 'torch', 'he'"),
        ({"name": "mgn", "head_init": "he"}, ValueError, "head_init applies to the backbone networks, not to mgn"),
        ({"mgn_reductions": "shared"}, ValueError, "mgn_reductions applies to the MGN networks"),
        ({"name": "mgn", "mgn_reductions": "one"}, ValueError, "mgn_reductions must be one of"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, error, message):
    arguments = {"name": "ptl_resnet34", "num_classes": 4, **kwargs}
    with pytest.raises(error, match=message), torch.device("meta"):
        create_model(**arguments)


@pytest.mark.parametrize("name", ["ptl_resnet34", "ptl_v2_resnet50", "ptl_densenet161", "ptl_densenet_bc100"])
def test_side_width_scales_every_cell_and_fuse_and_keeps_the_backbone_and_features(name):
    full, half = meta_model(name), meta_model_with(name, side_width=0.5)
    assert half.cell_channels == tuple(max(4, c // 2) for c in full.cell_channels)
    assert half.fuse_channels == tuple(max(4, c // 2) for c in full.fuse_channels)
    assert half.feature_dim == full.feature_dim
    stages = {k: v for k, v in shapes(full).items() if k.startswith("stages.")}
    assert {k: v for k, v in shapes(half).items() if k.startswith("stages.")} == stages
    assert count_parameters(half) < count_parameters(full)


def test_side_width_builds_what_explicit_half_widths_build():
    from ptl_ext.models import PTLNet, build_backbone

    torch.manual_seed(3)
    built = create_model("ptl_resnet34", 4, (64, 32), side_width=0.5)
    torch.manual_seed(3)
    stages = build_backbone("resnet34", last_stride=1).stages()
    full = meta_model_with("ptl_resnet34", input_size=(64, 32))
    by_hand = PTLNet(
        stages,
        4,
        cell_channels=[max(4, c // 2) for c in full.cell_channels],
        fuse_channels=[max(4, c // 2) for c in full.fuse_channels],
        input_size=(64, 32),
    )
    expected = by_hand.state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in built.state_dict().items())


def meta_model_with(name, input_size=SIZE, **options):
    with torch.device("meta"):
        return create_model(name, 5, input_size, **options)


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="'resnet50' is registered already"):
        register_model("resnet50", family="resnet")(lambda *args, **kwargs: None)
    with pytest.raises(ValueError, match="'mgn_ptl' is registered already"):
        register_model("mgn_ptl", family="mgn")(lambda *args, **kwargs: None)


def test_count_parameters_counts_trainable_ones():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    assert count_parameters(model) == 8 + 3
    model[0].requires_grad_(False)
    assert count_parameters(model) == 3


def test_paper_head_options_reach_the_network():
    torch.manual_seed(0)
    net = create_model("resnet34", 7, (64, 32), head="rolling_back", head_init="he", last_stride=2)
    linears = [m for m in net.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 7)]
    assert linears[0].bias is None and torch.count_nonzero(linears[1].bias) == 0  # BN follows; He: zero biases
    shared = create_model("mgn", 7, mgn_reductions="shared")
    assert len(shared.reductions) == 1
