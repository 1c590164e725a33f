"""Networks from checkpoints: rebuilding one from its ``meta`` and loading weights all but the head."""

import warnings

import pytest
import torch

from ptl_ext.models import create_model
from ptl_ext.train import load_checkpoint, save_checkpoint
from ptl_ext.train.checkpoint import load_weights_except_head, model_from_checkpoint

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")

SIZE = (32, 16)


def meta(arch, **changes):
    return {
        "arch": arch,
        "num_classes": 3,
        "height": SIZE[0],
        "width": SIZE[1],
        "v2": False,
        "last_stride": 1,
        "head": "cifar",
        "dropout": None,
        **changes,
    }


def saved(tmp_path, model, meta_):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": model.state_dict(), "meta": meta_})
    return path


def test_model_from_checkpoint_rebuilds_the_network_with_its_weights(tmp_path):
    torch.manual_seed(0)
    model = create_model("ptl_v2_densenet_bc100", 3, SIZE, head="cifar")
    old_meta = meta("ptl_densenet_bc100", v2=True)  # the old spelling of PTL-v2
    rebuilt = model_from_checkpoint(load_checkpoint(saved(tmp_path, model, old_meta)))
    assert type(rebuilt) is type(model)
    assert all(torch.equal(value, rebuilt.state_dict()[key]) for key, value in model.state_dict().items())


def test_model_from_checkpoint_errors_name_the_source():
    with pytest.raises(ValueError, match="--teacher t.pt: no complete model description .*arch"):
        model_from_checkpoint({"model": {}}, "--teacher t.pt")
    with pytest.raises(ValueError, match="--teacher t.pt: cannot rebuild its network: unknown model 'vgg16'"):
        model_from_checkpoint({"model": {}, "meta": meta("vgg16")}, "--teacher t.pt")
    with pytest.raises(ValueError, match="checkpoint: no model weights"):
        model_from_checkpoint({"meta": meta("densenet_bc100")})
    weights = create_model("resnet34", 3, SIZE, head="cifar").state_dict()
    with pytest.raises(ValueError, match="checkpoint: the checkpoint's network differs from its meta's network"):
        model_from_checkpoint({"model": weights, "meta": meta("densenet_bc100")})


def test_load_weights_except_head_keeps_the_new_head(tmp_path):
    torch.manual_seed(0)
    first = create_model("ptl_resnet34", 6, SIZE)
    path = saved(tmp_path, first, meta("ptl_resnet34", num_classes=6, head="reid"))
    second = create_model("ptl_resnet34", 4, SIZE)
    head = {key: value.clone() for key, value in second.head.state_dict().items()}
    assert load_weights_except_head(second, path) is second
    for key, value in first.state_dict().items():
        if not key.startswith("head."):
            assert torch.equal(value, second.state_dict()[key]), key
    assert all(torch.equal(value, second.head.state_dict()[key]) for key, value in head.items())


def test_load_weights_except_head_refuses_another_network(tmp_path):
    path = saved(tmp_path, create_model("ptl_resnet34", 6, SIZE), meta("ptl_resnet34"))
    with pytest.raises(ValueError, match="--init-from .*last.pt: the checkpoint's network differs from this run's"):
        load_weights_except_head(create_model("resnet34", 6, SIZE), path)
    model = create_model("ptl_resnet34", 6, SIZE)
    weights = model.state_dict()
    weights["stages.0.conv1.weight"] = torch.zeros(32, 3, 7, 7)
    path = tmp_path / "other.pt"
    save_checkpoint(path, {"model": weights, "meta": meta("ptl_resnet34")})
    with pytest.raises(
        ValueError,
        match=r"--chain step 2 .*other.pt: .*stages.0.conv1.weight \(32, 3, 7, 7\) vs "
        r"\(64, 3, 7, 7\)",
    ):
        load_weights_except_head(model, path, "--chain step 2")
