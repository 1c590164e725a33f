import os
import subprocess
import sys

import pytest

from ptl_ext.cli import build_parser, load_config_file, main, parse_args
from ptl_ext.train.metrics import read_csv

TINY_DATA = [
    "--train-ids",
    "6",
    "--test-ids",
    "4",
    "--cams",
    "3",
    "--images-per-cam",
    "2",
    "--height",
    "32",
    "--width",
    "16",
    "--distractors",
    "2",
    "--junk",
    "1",
]


def train_args(root, out, *extra):
    return [
        "train",
        "--root",
        str(root),
        "--arch",
        "resnet34",
        "--height",
        "32",
        "--width",
        "16",
        "--p",
        "3",
        "--k",
        "2",
        "--workers",
        "0",
        "--eval-batch-size",
        "16",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    assert main(["synth", str(root), *TINY_DATA]) == 0
    return root


def test_help_of_every_command(capsys):
    parser, commands = build_parser()
    assert set(commands) == {"demo", "train", "eval", "synth", "pretrain", "extract", "export", "info", "study"}
    for argv in (["--help"], *([name, "--help"] for name in commands)):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "usage: ptl" in out
    # every option of every subcommand has a help text
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"ptl {name} {action.option_strings} has no help"


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "ptl_ext", "synth", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and "--images-per-cam" in result.stdout


def test_synth_writes_market_layout(synthetic, capsys):
    assert sorted(os.listdir(synthetic)) == ["bounding_box_test", "bounding_box_train", "query"]
    assert main(["synth", str(synthetic), *TINY_DATA]) == 2
    assert "not empty" in capsys.readouterr().err


def test_train_eval_and_resume_refusal(synthetic, tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("epochs = 2\nlr = 0.05\neval-every = 1\ntriplet_weight = 1.0\nnesterov = true\n")
    out = tmp_path / "run"
    assert main([*train_args(synthetic, out), "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "CMC-1" in printed and "resnet34" in printed
    rows = read_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["mAP"] is not None and rows[0]["triplet"] is not None
    # eval rebuilds the network from the checkpoint and finds the same mAP
    assert main(["eval", "--checkpoint", str(out / "last.pt"), "--workers", "0"]) == 0
    assert f"{100 * rows[1]['mAP']:.2f}%" in capsys.readouterr().out
    # re-ranking and query-expansion options reach the evaluator
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(out / "last.pt"),
                "--workers",
                "0",
                "--rerank",
                "--k1",
                "3",
                "--k2",
                "2",
                "--lambda",
                "0.5",
                "--aqe",
                "2",
                "--aqe-alpha",
                "2",
            ]
        )
        == 0
    )
    assert "CMC-1" in capsys.readouterr().out
    # resuming from a corrupted checkpoint fails cleanly and changes no file
    last = out / "last.pt"
    data = bytearray(last.read_bytes())
    data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert main([*train_args(synthetic, out), "--epochs", "3", "--resume"]) == 2
    assert "corrupted" in capsys.readouterr().err
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_config_file_values_and_errors(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('epochs = 7\nstep-size = 3\narch = "ptl_resnet34"\n')
    args = parse_args(["train", "--config", str(config), "--epochs", "9"])
    assert (args.epochs, args.step_size, args.arch) == (9, 3, "ptl_resnet34")  # the command line wins
    config.write_text("epoch = 7\n")
    with pytest.raises(ValueError, match="unknown options epoch"):
        parse_args(["train", "--config", str(config)])
    config.write_text("[section]\nepochs = 7\n")
    with pytest.raises(ValueError, match="flat"):
        load_config_file(str(config))
    config.write_text("epochs = \n")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_config_file(str(config))
    with pytest.raises(FileNotFoundError):
        load_config_file(str(tmp_path / "none.toml"))


def test_train_errors_are_reported(tmp_path, capsys):
    assert main(["train", "--root", str(tmp_path), "--no-progress"]) == 2
    assert "missing bounding_box_train" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "--root is required" in capsys.readouterr().err


def test_init_from_keeps_the_backbone_with_a_new_head(synthetic, tmp_path):
    import torch

    from ptl_ext.train import load_checkpoint

    first = tmp_path / "first"
    assert main([*train_args(synthetic, first), "--epochs", "1", "--eval-every", "0"]) == 0
    second = tmp_path / "second"
    assert (
        main(
            [
                *train_args(synthetic, second),
                "--epochs",
                "1",
                "--lr",
                "0",
                "--head-lr",
                "0.1",
                "--weight-decay",
                "0",
                "--init-from",
                str(first / "last.pt"),
            ]
        )
        == 0
    )
    before, after = load_checkpoint(first / "last.pt")["model"], load_checkpoint(second / "last.pt")["model"]
    conv = "stages.0.conv1.weight"
    assert torch.equal(before[conv], after[conv])  # lr 0: the loaded backbone weights are kept
    assert (
        main([*train_args(synthetic, tmp_path / "third"), "--arch", "resnet50", "--init-from", str(first / "last.pt")])
        == 2
    )


def test_cifar_classification_run(tmp_path, capsys):
    import pickle

    import numpy as np

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 6)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "cifar10",
                "--root",
                str(tmp_path),
                "--arch",
                "resnet34",
                "--batch-size",
                "10",
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
    assert "top-1 error" in capsys.readouterr().out
    rows = read_csv(out / "metrics.csv")
    assert 0.0 <= rows[0]["top1_error"] <= 1.0


def test_arch_dependent_defaults_and_task_checks(capsys):
    mgn = parse_args(["train", "--arch", "mgn_ptl"])
    assert (mgn.height, mgn.width, mgn.p, mgn.k, mgn.loss, mgn.triplet_weight, mgn.triplet_margin) == (
        384,
        128,
        4,
        4,
        "mgn",
        1.0,
        1.2,
    )
    plain = parse_args(["train", "--arch", "resnet50", "--p", "8", "--triplet-margin", "0.5"])
    assert (plain.height, plain.width, plain.p, plain.loss, plain.triplet_weight, plain.triplet_margin) == (
        256,
        128,
        8,
        "ce",
        0.0,
        0.5,
    )
    assert parse_args(["train", "--task", "classification", "--dataset", "cifar100"]).task == "classification"
    with pytest.raises(ValueError, match="--task classification does not fit --dataset market1501"):
        parse_args(["train", "--task", "classification"])
    with pytest.raises(ValueError, match="--loss mgn does not fit --arch resnet50"):
        parse_args(["train", "--arch", "resnet50", "--loss", "mgn"])
    assert main(["train", "--task", "reid", "--dataset", "cifar10"]) == 2
    assert "--task reid does not fit --dataset cifar10" in capsys.readouterr().err


def test_mgn_ptl_train_and_eval(synthetic, tmp_path, capsys):
    out = tmp_path / "mgn"
    # default P×K of MGN (4 ids × 4 images) on 96×32 inputs: one batch of 16 per epoch here
    assert (
        main(
            [
                "train",
                "--root",
                str(synthetic),
                "--arch",
                "mgn_ptl",
                "--height",
                "96",
                "--width",
                "32",
                "--epochs",
                "1",
                "--workers",
                "0",
                "--eval-batch-size",
                "16",
                "--no-progress",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "mgn_ptl" in capsys.readouterr().out
    row = read_csv(out / "metrics.csv")[0]
    assert 0.0 <= row["mAP"] <= 1.0 and row["ce"] > 0 and row["triplet"] is not None
    assert main(["eval", "--checkpoint", str(out / "last.pt"), "--workers", "0"]) == 0
    assert f"{100 * row['mAP']:.2f}%" in capsys.readouterr().out


def test_synthetic_cifar_classification_run(tmp_path, capsys):
    from ptl_ext.train import load_checkpoint

    data = tmp_path / "data"
    assert main(["synth", str(data), "--format", "cifar10", "--train-per-class", "2", "--test-per-class", "1"]) == 0
    assert "20 training and 10 test images" in capsys.readouterr().out
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--task",
                "classification",
                "--dataset",
                "cifar10",
                "--root",
                str(data),
                "--arch",
                "ptl_v2_densenet_bc100",
                "--batch-size",
                "10",
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
    assert "top-1 error" in capsys.readouterr().out
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and 0.0 <= rows[0]["top1_error"] <= 1.0
    assert (out / "curves.png").stat().st_size > 0
    weights = load_checkpoint(out / "last.pt")["model"]
    assert any(key.endswith("recover.weight") for key in weights)  # PTL-v2 cells


def test_ptl_ablation_options_train_record_and_rebuild(synthetic, tmp_path, capsys):
    from ptl_ext.models import create_model
    from ptl_ext.runs.model import build_model
    from ptl_ext.train import load_checkpoint
    from ptl_ext.train.checkpoint import model_from_checkpoint

    with pytest.raises(ValueError, match="--side-width: only for the PTL network of a backbone.*--arch resnet34"):
        parse_args(["train", "--arch", "resnet34", "--side-width", "0.5"])
    with pytest.raises(ValueError, match="--side-width: only .* not for --arch ptl_mgn"):
        parse_args(["train", "--arch", "ptl_mgn", "--side-width", "0.5"])
    with pytest.raises(ValueError, match="--cell-state: only for the PTL networks"):
        parse_args(["train", "--arch", "resnet50", "--cell-state", "reset"])
    assert parse_args(["train", "--arch", "ptl_mgn", "--cell-state", "zero"]).cell_state == "zero"
    args = parse_args(["train", "--arch", "ptl_resnet34", "--cell-state", "reset", "--height", "32", "--width", "16"])
    assert {cell.state_mode for cell in build_model(args.spec, 3, (32, 16)).cells} == {"reset"}
    assert main(["train", "--arch", "ptl_resnet34", "--side-width", "0"]) == 2
    assert "--side-width" in capsys.readouterr().err

    out = tmp_path / "narrow"
    options = ["--arch", "ptl_resnet34", "--side-width", "0.5", "--cell-state", "zero", "--epochs", "1"]
    assert main([*train_args(synthetic, out), *options]) == 0
    capsys.readouterr()
    state = load_checkpoint(out / "last.pt")
    assert (state["meta"]["side_width"], state["meta"]["cell_state"]) == (0.5, "zero")
    rebuilt = model_from_checkpoint(state, "last.pt")  # the half-width network, weights loaded
    full = create_model("ptl_resnet34", 6, (32, 16))
    assert rebuilt.cell_channels == tuple(max(4, c // 2) for c in full.cell_channels)
    assert main(["eval", "--checkpoint", str(out / "last.pt"), "--workers", "0"]) == 0
    assert "CMC-1" in capsys.readouterr().out
    # the state mode changes what is trained: a resume must keep it
    assert (
        main(
            [*train_args(synthetic, out), "--arch", "ptl_resnet34", "--side-width", "0.5", "--epochs", "2", "--resume"]
        )
        == 2
    )
    assert "--cell-state: saved 'zero', given 'carry'" in capsys.readouterr().err


def test_eval_from_a_training_state_is_an_eval_option_for_carried_ptl_states(synthetic, tmp_path, capsys, monkeypatch):
    import ptl_ext.nn

    accumulated = []
    real = ptl_ext.nn.accumulate_eval_states
    monkeypatch.setattr(
        ptl_ext.nn, "accumulate_eval_states", lambda *a: accumulated.append(real(*a)) or accumulated[-1]
    )
    runs = {}
    for name, options in {
        "ptl": ["--arch", "ptl_resnet34"],
        "zero": ["--arch", "ptl_resnet34", "--cell-state", "zero"],
        "plain": [],
    }.items():
        runs[name] = tmp_path / name / "last.pt"
        assert main([*train_args(synthetic, tmp_path / name), "--epochs", "1", *options]) == 0
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(runs["ptl"]), "--workers", "0", "--eval-state", "train"]) == 0
    assert "eval state: the mean state of the cells over the training split" in capsys.readouterr().out
    assert accumulated == [6]  # every cell of ptl_resnet34 got an eval state
    for name, message in (("zero", "trained with --cell-state zero"), ("plain", "only for PTL networks")):
        assert main(["eval", "--checkpoint", str(runs[name]), "--workers", "0", "--eval-state", "train"]) == 2
        assert message in capsys.readouterr().err
