"""configs/: every paper-row file passes `ptl train --dry-run`, and each family runs one epoch on tiny data.

The family runs use the files as a user would (`--config FILE --root DIR`), overriding only the sizes
(input, P×K, epochs, CIFAR batch) on the command line, in a temporary working folder so the files'
relative run folders (and the STD teacher paths between them) are used as written.
"""

import contextlib
import csv
import glob
import io
import os
import shutil

import pytest
import tomllib
import torch

from ptl_ext import models
from ptl_ext.cli import OptionError, main, parse_args
from ptl_ext.cli.report import paper_comparison
from ptl_ext.train import load_checkpoint

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
FILES = sorted(os.path.relpath(p, CONFIGS) for p in glob.glob(os.path.join(CONFIGS, "**", "*.toml"), recursive=True))
TINY = [
    "--height",
    "32",
    "--width",
    "16",
    "--p",
    "3",
    "--k",
    "2",
    "--epochs",
    "1",
    "--workers",
    "0",
    "--eval-batch-size",
    "16",
    "--eval-every",
    "1",
    "--save-every",
    "0",
    "--no-progress",
]


def config(name):
    return os.path.join(CONFIGS, name)


def read_toml(path):
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def test_there_is_a_file_per_family_and_an_index():
    families = {os.path.dirname(f) for f in FILES}
    assert {
        "ptl/market1501",
        "ptl/msmt17",
        "ptl/mgn",
        "ptl/chain",
        "ptl/std_lambda",
        "ptl/cifar",
        "rolling_back/table2",
        "rolling_back/table3",
    } <= families
    with open(os.path.join(CONFIGS, "README.md")) as fh:
        index = fh.read()
    assert all(f"`{f}`" in index for f in FILES), "configs/README.md lists every file"


@pytest.mark.parametrize("name", FILES)
def test_every_config_passes_dry_run(name, tmp_path, capsys, monkeypatch):
    # no --root and a working folder without data: a dry run reads nothing
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", config(name), "--dry-run"]) == 0
    out = capsys.readouterr().out
    settings, paper = out.split("\n[paper]\n")
    resolved = tomllib.loads(settings)
    file = read_toml(config(name))
    # the printed settings are the file's options after the defaults are resolved: a valid config again
    assert {k: v for k, v in resolved.items() if k in file} == {k: v for k, v in file.items() if k != "paper"}
    assert resolved["task"] in ("reid", "classification") and "loss" in resolved
    assert "source = " in paper and file["paper"]["source"].startswith(("PTL paper", "rolling-back paper"))
    assert not os.listdir(tmp_path)


def test_dry_run_output_is_a_config_that_resolves_to_the_same_run(tmp_path, capsys):
    name = config("rolling_back/table2/resnet50_market1501_rollback.toml")
    assert main(["train", "--config", name, "--dry-run", "--period-epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 x 2 = 8 epochs" in out
    (tmp_path / "again.toml").write_text(out.split("\nnote:")[0])
    first = vars(parse_args(["train", "--config", name, "--period-epochs", "2"]))
    again = vars(parse_args(["train", "--config", str(tmp_path / "again.toml")]))
    drop = ("config", "paper")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in again.items() if k not in drop}
    assert again["paper"] == first["paper"]


def test_mgn_rows_carry_the_released_numbers():
    args = parse_args(["train", "--config", config("ptl/mgn/ptl_mgn_market1501.toml")])
    assert (args.paper["mAP"], args.paper["rank1"]) == (87.34, 94.83)
    assert args.arch == "ptl_mgn" and args.loss == "mgn" and (args.height, args.width) == (384, 128)


@pytest.mark.parametrize(
    "table, expected",
    [
        ("[paper]\nmAP = 120.0\n", "[paper] mAP (percent): expected a number >= 0.0 and <= 100.0"),
        ('[paper]\nrank1 = "95"\n', "[paper] rank1 (percent): expected a number"),
        ("[paper]\nparameters = 2.5\n", "[paper] parameters: expected an integer"),
        ("[paper]\nsource = 3\n", "[paper] source: expected a string"),
        ("[paper]\nrank_1 = 95.0\n", "[paper]: unknown keys rank_1"),
        ("paper = 3\n", "[paper] must be a table"),
        ("[other]\nlr = 0.1\n", "at most a [paper] table"),
    ],
)
def test_paper_table_is_checked(tmp_path, capsys, table, expected):
    path = tmp_path / "row.toml"
    path.write_text("epochs = 2\n" + table)
    assert main(["train", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"--config {path}" in err and expected in err


def test_paper_is_not_an_option(tmp_path):
    path = tmp_path / "row.toml"
    path.write_text("epochs = 2\n[paper]\nmAP = 50.0\n")
    args = parse_args(["train", "--config", str(path)])
    assert args.epochs == 2 and args.paper == {"mAP": 50.0}
    assert parse_args(["train"]).paper is None
    with pytest.raises(OptionError, match="unknown options paper_map"):
        path.write_text("paper_map = 50.0\n")
        parse_args(["train", "--config", str(path)])


def test_paper_comparison_numbers():
    table, rows = paper_comparison(
        "net",
        1000,
        {"mAP": 0.5, "rank1": 0.75, "rank5": 0.9},
        {"mAP": 40.0, "rank1": 80.0, "parameters": 900, "source": "Table 1, row net"},
    )
    got = {row["metric"]: row for row in rows}
    assert got["mAP"] == {"metric": "mAP", "ours": 50.0, "paper": 40.0, "difference": 10.0}
    assert got["rank1"]["difference"] == -5.0 and got["rank5"]["paper"] is None
    assert got["parameters"]["difference"] == 100 and got["source"]["paper"] == "Table 1, row net"
    lines = table.splitlines()
    assert lines[1].startswith("net (ours)") and "50.00%" in lines[1]
    assert lines[2].startswith("paper") and "40.00%" in lines[2] and "-5.00%" in lines[3]


# --- one epoch per family on tiny synthetic data ------------------------------------------------------


def synth(out, *extra):
    assert (
        main(
            [
                "synth",
                str(out),
                "--train-ids",
                "4",
                "--test-ids",
                "3",
                "--cams",
                "3",
                "--images-per-cam",
                "2",
                "--distractors",
                "2",
                "--junk",
                "1",
                "--height",
                "32",
                "--width",
                "16",
                *extra,
            ]
        )
        == 0
    )
    return out


def as_msmt17(market, out):
    """A MSMT17_V1 folder (train/test images and the four list files) holding a Market-format set's images."""
    for split, folder, lists in (
        ("train", "bounding_box_train", ("list_train.txt", "list_val.txt")),
        ("test", "query", ("list_query.txt",)),
        ("test", "bounding_box_test", ("list_gallery.txt",)),
    ):
        lines = []
        for name in sorted(os.listdir(market / folder)):
            pid, cam = int(name.split("_")[0]), int(name.split("_")[1][1])
            if pid < 0:
                continue
            rel = f"{pid:04d}/{pid:04d}_{len(lines):03d}_{cam:02d}_{folder}.jpg"
            os.makedirs(out / split / f"{pid:04d}", exist_ok=True)
            shutil.copy(market / folder / name, out / split / rel)
            lines.append(f"{rel} {pid}")
        half = len(lines) // 2 if len(lists) == 2 else len(lines)
        (out / lists[0]).write_text("\n".join(lines[:half]) + "\n")
        if len(lists) == 2:
            (out / lists[1]).write_text("\n".join(lines[half:]) + "\n")
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("market") / "data")


def run_row(name, root, *extra):
    """Run configs/NAME with the tiny overrides; returns (run folder, console output, paper.csv rows)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["train", "--config", config(name), "--root", str(root), *TINY, *extra]) == 0
    out = out.getvalue()
    folder = read_toml(config(name))["out"]
    with open(os.path.join(folder, "paper.csv")) as fh:
        rows = {row["metric"]: row for row in csv.DictReader(fh)}
    assert "ours beside the paper:" in out and "\npaper " in out
    return folder, out, rows


@pytest.fixture(scope="module")
def ptl_row(data, tmp_path_factory):
    """The PTL-ResNet-50 Market row run in its own working folder: (folder, run folder, output, paper.csv rows)."""
    cwd = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return (cwd, *run_row("ptl/market1501/ptl_resnet50.toml", data))


def test_resnet_row_runs_and_is_compared_with_the_paper(ptl_row):
    cwd, folder, out, rows = ptl_row
    state = load_checkpoint(cwd / folder / "last.pt")
    assert state["meta"]["arch"] == "ptl_resnet50" and state["meta"]["dataset"] == "market1501"
    assert "note: the paper's row starts from pre-trained weights (resnet50-0676ba61.pth)" in out
    assert float(rows["mAP"]["ours"]) == pytest.approx(100 * state["history"][-1]["mAP"], abs=1e-3)
    assert rows["mAP"]["paper"] == "" and rows["parameters"]["paper"] == "35000000"
    assert int(rows["parameters"]["ours"]) == state["meta"]["parameters"]


def test_mgn_row_against_the_released_numbers(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, out, rows = run_row("ptl/mgn/ptl_mgn_market1501.toml", data, "--height", "64", "--width", "32")
    assert rows["mAP"]["paper"] == "87.34" and rows["rank1"]["paper"] == "94.83"
    assert float(rows["mAP"]["difference"]) == pytest.approx(float(rows["mAP"]["ours"]) - 87.34, abs=1e-3)
    assert "87.34%" in out


def test_rolling_back_row_from_a_torchvision_checkpoint(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "resnet34-b627a593.pth"
    torch.save(models.resnet34().state_dict(), weights)  # the torchvision key format
    folder, out, _ = run_row(
        "rolling_back/table3/resnet34_market1501_rollback.toml",
        data,
        "--pretrained",
        str(weights),
        "--rollback-periods",
        "2",
        "--period-epochs",
        "1",
        "--period-decay-epoch",
        "1",
    )
    assert "note:" not in out
    history = load_checkpoint(os.path.join(folder, "last.pt"))["history"]
    assert len(history) == 2


@pytest.mark.slow
def test_cifar_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cifar"
    assert main(["synth", str(root), "--format", "cifar10", "--train-per-class", "2", "--test-per-class", "1"]) == 0
    _, _, rows = run_row(
        "ptl/cifar/ptl_densenet_bc100_cifar10_plus.toml", root, "--batch-size", "8", "--height", "32", "--width", "32"
    )  # CIFAR images are 32x32
    assert 0 <= float(rows["top1_error"]["ours"]) <= 100 and rows["top1_error"]["paper"] == ""


@pytest.mark.slow
def test_densenet_row(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, _, rows = run_row("ptl/market1501/densenet161.toml", data, "--height", "64", "--width", "32")
    assert rows["parameters"]["paper"] == "32000000"


@pytest.mark.slow
def test_std_row_is_taught_by_the_ptl_row(data, ptl_row, monkeypatch):
    # the teacher row wrote the checkpoint the STD row's file names, in the same working folder
    cwd, teacher, _, _ = ptl_row
    monkeypatch.chdir(cwd)
    assert os.path.isfile(os.path.join(teacher, "best.pt"))
    folder, out, _ = run_row("ptl/market1501/resnet50_std.toml", data)
    assert "STD teacher runs/paper/ptl/market1501/ptl_resnet50/best.pt" in out
    meta = load_checkpoint(os.path.join(folder, "last.pt"))["meta"]
    assert meta["arch"] == "resnet50" and meta["teacher"]["checkpoint"] == os.path.abspath(
        os.path.join(teacher, "best.pt")
    )


@pytest.mark.slow
def test_chain_row_over_three_datasets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "datasets"
    synth(parent / "DukeMTMC-reID", "--seed", "1")
    synth(parent / "Market-1501-v15.09.15", "--seed", "2")
    as_msmt17(synth(tmp_path / "msmt-source", "--seed", "3"), parent / "MSMT17_V1")
    folder, out, rows = run_row("ptl/chain/resnet50_duke_market_msmt17.toml", parent)
    steps = sorted(os.listdir(folder))
    assert steps[:3] == ["1_dukemtmc_reid", "2_market1501", "3_msmt17"] and "paper.csv" in steps
    last = load_checkpoint(os.path.join(folder, "3_msmt17", "last.pt"))
    assert float(rows["mAP"]["ours"]) == pytest.approx(100 * last["history"][-1]["mAP"], abs=1e-3)
    assert out.count("ours beside the paper:") == 1
