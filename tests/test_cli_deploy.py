"""`ptl extract`, `ptl eval --visualize`, `ptl export`, `ptl info` and `ptl train --tensorboard` end to end."""

import importlib.util
import os

import numpy as np
import pytest

from ptl_ext.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.mktemp("deploy")
    data = base / "data"
    assert (
        main(
            [
                "synth",
                str(data),
                "--train-ids",
                "4",
                "--test-ids",
                "3",
                "--cams",
                "2",
                "--images-per-cam",
                "2",
                "--distractors",
                "1",
                "--junk",
                "1",
                "--height",
                "32",
                "--width",
                "16",
            ]
        )
        == 0
    )
    out = base / "run"
    assert (
        main(
            [
                "train",
                "--root",
                str(data),
                "--arch",
                "ptl_resnet34",
                "--height",
                "32",
                "--width",
                "16",
                "--p",
                "2",
                "--k",
                "2",
                "--epochs",
                "1",
                "--workers",
                "0",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return data, out / "last.pt"


def test_extract_writes_features_names_and_market_ids(trained, tmp_path, capsys):
    data, checkpoint = trained
    out = tmp_path / "feats.npz"
    assert (
        main(["extract", "--checkpoint", str(checkpoint), str(data / "query"), "--out", str(out), "--no-progress"]) == 0
    )
    names = sorted(os.listdir(data / "query"))
    with np.load(out) as f:
        assert sorted(f["names"].tolist()) == names and f["features"].shape[0] == len(names)
        assert [int(n[:4]) for n in f["names"]] == f["pids"].tolist()
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    capsys.readouterr()
    assert (
        main(
            [
                "extract",
                "--checkpoint",
                str(checkpoint),
                str(tmp_path / "bad.jpg"),
                "--out",
                str(tmp_path / "none.npz"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "bad.jpg" in err and err.count("\n") == 1 and not (tmp_path / "none.npz").exists()


@pytest.mark.parametrize("rerank", [False, True])
def test_eval_visualize_writes_strips_and_an_index(trained, tmp_path, capsys, rerank):
    _, checkpoint = trained
    out = tmp_path / "ranked"
    extra = ["--rerank", "--k1", "3", "--k2", "2"] if rerank else []
    common = ["eval", "--checkpoint", str(checkpoint), "--workers", "0", *extra]
    assert main(common) == 0
    plain_table = capsys.readouterr().out
    assert (
        main(
            [
                *common,
                "--visualize",
                "4",
                "--vis-out",
                str(out),
                "--vis-queries",
                "3",
                "--vis-select",
                "worst",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.startswith(plain_table)  # the pictures' distances give the same metrics
    pngs = sorted(name for name in os.listdir(out) if name.endswith(".png"))
    html = (out / "index.html").read_text()
    assert len(pngs) == 3 and all(name in html for name in pngs)


def test_export_torchscript_and_onnx(trained, tmp_path, capsys):
    _, checkpoint = trained
    assert (
        main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript", "--out", str(tmp_path / "net.pt")])
        == 0
    )
    assert "largest difference" in capsys.readouterr().out
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        assert (
            main(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "net.onnx")])
            == 0
        )
        assert (tmp_path / "net.onnx").stat().st_size > 0
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(checkpoint),
                "--format",
                "exported-program",
                "--out",
                str(tmp_path / "net.pt"),
            ]
        )
        == 2
    )
    assert ".pt2" in capsys.readouterr().err


def test_info_prints_the_build(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "compiled ops" in out


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_scalars_and_a_resume_without_them(trained, tmp_path):
    data, _ = trained
    out = tmp_path / "tb"
    common = [
        "train",
        "--root",
        str(data),
        "--arch",
        "resnet34",
        "--height",
        "32",
        "--width",
        "16",
        "--p",
        "2",
        "--k",
        "2",
        "--workers",
        "0",
        "--no-progress",
        "--out",
        str(out),
    ]
    assert main([*common, "--epochs", "1", "--tensorboard"]) == 0
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(out / "tensorboard"))
    assert main([*common, "--epochs", "2", "--resume"]) == 0  # a logging hook keeps no state
