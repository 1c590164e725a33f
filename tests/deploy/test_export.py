"""Export round trips (ONNX in onnxruntime, TorchScript and ExportedProgram in torch) against eager features."""

import pytest
import torch

from ptl_ext import models, ops, reference
from ptl_ext.deploy import export_checkpoint, export_model, load_exported, pure_pytorch_cells, run_exported
from ptl_ext.deploy.export import EXTENSIONS
from ptl_ext.models import create_model, mgn
from ptl_ext.models.resnet import BasicBlock, Bottleneck
from ptl_ext.nn import reset_states
from ptl_ext.nn.cells import LatentStateCell
from ptl_ext.train import save_checkpoint

FORMATS = ("torchscript", "exported-program", "onnx")
# The project's own network classes on shallow ResNets (one block per layer; MGN's layer3 needs two) and
# small inputs keep the file fast; the full-depth networks export the same way. MGN's stripes need heights
# that are multiples of 48.
NETWORKS = {"plain": (64, 32), "ptl": (64, 32), "ptl_v2": (64, 32), "mgn_ptl": (96, 32)}


def shallow_resnet():
    return models.ResNet(BasicBlock, [1, 1, 1, 1])


def build(arch, size):
    if arch == "plain":
        return models.BackboneNet(shallow_resnet().stages(), 5, input_size=size)
    if arch in ("ptl", "ptl_v2"):
        return models.PTLNet(shallow_resnet().stages(), 5, v2=arch == "ptl_v2", input_size=size)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mgn, "resnet50", lambda pretrained=None: models.ResNet(Bottleneck, [1, 1, 2, 1]))
        return models.MGNPTL(5)


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    built = {}
    for arch, size in NETWORKS.items():
        model = build(arch, size)
        with torch.no_grad():  # non-trivial BatchNorm statistics, so eval differs from train mode
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.uniform_(-0.1, 0.1)
                    module.running_var.uniform_(0.5, 1.5)
        built[arch] = model.eval()
    return built


def within_tolerance(got, expected):
    """Max difference at most 1e-4 of the features' scale (float32 features of magnitude up to ~100 here)."""
    return float((got - expected).abs().max()) <= 1e-4 * max(1.0, float(expected.abs().max()))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", NETWORKS)
def test_exported_features_equal_eager_features(networks, arch, fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxscript")
        pytest.importorskip("onnxruntime")
    model, size = networks[arch], NETWORKS[arch]
    path = tmp_path / f"net{EXTENSIONS[fmt]}"
    report = export_model(model, fmt, path, size, check=False)
    assert report["feature_dim"] == model.feature_dim and report["max_abs_diff"] is None
    images = torch.randn(5, 3, *size)  # a batch size the export never saw
    with torch.no_grad():
        expected = model(images)
    got = run_exported(str(path), fmt, images)
    assert got.shape == expected.shape and within_tolerance(got, expected)
    cells = [m for m in model.modules() if isinstance(m, LatentStateCell)]
    assert all(cell.update_fn is ops.bconv_cell_update for cell in cells)  # the swap is undone
    if fmt == "exported-program":  # the file holds the decomposition, not the compiled op
        graph = str(torch.export.load(str(path)).graph)
        assert "ptl_ext" not in graph and ("sigmoid" in graph or not cells)
    print(
        f"{arch} {fmt}: max |diff| {float((got - expected).abs().max()):.3g} "
        f"(features up to {float(expected.abs().max()):.3g})"
    )


def test_the_report_checks_the_file_against_eager_features(networks, tmp_path):
    model = networks["ptl"]
    report = export_model(model, "torchscript", tmp_path / "net.pt", NETWORKS["ptl"])
    assert report["format"] == "torchscript" and report["input_size"] == (64, 32)
    assert 0 <= report["max_abs_diff"] <= 1e-4 * report["max_abs_feature"] and report["max_abs_feature"] > 0


def test_the_swap_is_scoped_to_the_block(networks):
    model = networks["ptl_v2"]
    cells = [m for m in model.modules() if isinstance(m, LatentStateCell)]
    with pure_pytorch_cells(model):
        assert all(cell.update_fn is reference.bconv_cell_update for cell in cells)
    assert all(cell.update_fn is ops.bconv_cell_update for cell in cells)


def test_training_mode_and_carried_states_are_refused(tmp_path):
    torch.manual_seed(0)
    model = build("ptl", (64, 32))
    with pytest.raises(ValueError, match="training mode"):
        export_model(model, "torchscript", tmp_path / "a.pt", (64, 32))
    model(torch.randn(2, 3, 64, 32))  # a training forward leaves a carried state behind
    model.eval()
    with pytest.raises(ValueError, match="non-zero latent state.*reset_states"):
        export_model(model, "torchscript", tmp_path / "a.pt", (64, 32))
    reset_states(model)
    assert export_model(model, "torchscript", tmp_path / "a.pt", (64, 32), check=False)["feature_dim"] == 512
    assert not (tmp_path / "b.pt").exists()


def test_bad_arguments_are_named(networks, tmp_path):
    model = networks["plain"]
    with pytest.raises(ValueError, match="format"):
        export_model(model, "tflite", tmp_path / "a", (64, 32))
    with pytest.raises(ValueError, match=r"\.pt2"):
        export_model(model, "exported-program", tmp_path / "a.pt", (64, 32))
    with pytest.raises(ValueError, match="opset"):
        export_model(model, "torchscript", tmp_path / "a.pt", (64, 32), opset=17)
    with pytest.raises(ValueError, match="input_size"):
        export_model(model, "torchscript", tmp_path / "a.pt", (64,))
    with pytest.raises(TypeError, match="nn.Module"):
        export_model("model", "torchscript", tmp_path / "a.pt", (64, 32))
    with pytest.raises(ValueError, match="format"):
        load_exported(str(tmp_path / "a.pt"), "keras")


def test_a_checkpoint_is_exported_at_its_training_size(tmp_path):
    torch.manual_seed(0)
    model = create_model("ptl_resnet34", 4, (32, 16))
    meta = {
        "arch": "ptl_resnet34",
        "num_classes": 4,
        "height": 32,
        "width": 16,
        "v2": False,
        "last_stride": 1,
        "head": "reid",
        "dropout": None,
    }
    save_checkpoint(str(tmp_path / "best.pt"), {"model": model.state_dict(), "meta": meta})
    report = export_checkpoint(str(tmp_path / "best.pt"), "torchscript", tmp_path / "net.pt")
    assert report["input_size"] == (32, 16) and report["max_abs_diff"] <= 1e-4 * report["max_abs_feature"]
    images = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        expected = model.eval()(images)
    assert within_tolerance(run_exported(str(tmp_path / "net.pt"), "torchscript", images), expected)
    with pytest.raises(TypeError, match="export_model"):
        export_checkpoint(model, "torchscript", tmp_path / "net.pt")
