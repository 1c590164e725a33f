"""`ptl train` with the methods: chained fine-tuning (--chain), STD (--teacher) and rolling back."""

import pytest
import torch

from ptl_ext import cli
from ptl_ext.cli import main, parse_chain
from ptl_ext.data import make_synthetic_market
from ptl_ext.train import checkpoint, load_checkpoint
from ptl_ext.train.metrics import read_csv


def tiny_set(root, train_ids, seed):
    make_synthetic_market(
        root,
        num_train_ids=train_ids,
        num_test_ids=3,
        num_cams=3,
        images_per_cam=2,
        num_distractors=2,
        num_junk=1,
        height=32,
        width=16,
        seed=seed,
    )
    return root


def train_args(out, *extra):
    return [
        "train",
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
        "--save-every",
        "0",
        "--epochs",
        "1",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A chain of two synthetic sets with 6 and 4 training identities, and what --init-from loaded."""
    base = tmp_path_factory.mktemp("chain")
    first, second = tiny_set(base / "a", 6, 0), tiny_set(base / "b", 4, 1)
    loaded = []
    real = checkpoint.load_weights_except_head

    def spy(model, path, option):
        real(model, path, option)
        loaded.append((str(path), {k: v.clone() for k, v in model.state_dict().items()}))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint, "load_weights_except_head", spy)
        code = main(
            train_args(
                base / "run", "--arch", "ptl_resnet34", "--lr", "0.05", "--chain", f"market1501={first},market={second}"
            )
        )
    assert code == 0
    return base, loaded


def test_chained_run_keeps_backbone_and_cells_with_a_new_head(chain, capsys):
    base, loaded = chain
    step1, step2 = (load_checkpoint(base / "run" / name / "last.pt") for name in ("1_market1501", "2_market1501"))
    assert (step1["meta"]["num_classes"], step2["meta"]["num_classes"]) == (6, 4)
    assert step1["meta"]["root"] == str(base / "a") and step2["meta"]["root"] == str(base / "b")
    # the second step started from the first one's last.pt: backbone stages and cells, not the head
    assert len(loaded) == 1 and loaded[0][0] == str(base / "run" / "1_market1501" / "last.pt")
    start = loaded[0][1]
    kept = [k for k in start if k.startswith(("stages.", "cells.", "fuses.", "final_fuse."))]
    assert any(k.startswith("cells.") for k in kept)
    assert all(torch.equal(start[k], step1["model"][k]) for k in kept)
    head = [k for k in start if k.startswith("head.") and k.endswith("weight")][-1]
    assert step1["model"][head].shape[0] == 6 and start[head].shape[0] == 4
    assert not torch.equal(start["stages.0.conv1.weight"], step2["model"]["stages.0.conv1.weight"])  # it trained


def test_chain_specification():
    assert parse_chain("duke,market,msmt17", "/data") == [
        ("dukemtmc_reid", "/data"),
        ("market1501", "/data"),
        ("msmt17", "/data"),
    ]
    assert parse_chain("market=/x,cifar10", "/data") == [("market1501", "/x"), ("cifar10", "/data")]
    with pytest.raises(ValueError, match="unknown dataset 'viper'"):
        parse_chain("market,viper", "/data")
    with pytest.raises(ValueError, match="has no folder"):
        parse_chain("market", None)
    with pytest.raises(ValueError, match="--resume without a value"):
        cli.run_chain(cli.parse_args(["train", "--chain", "market", "--root", "/x", "--resume", "a.pt"]))


@pytest.mark.parametrize(
    "option, needs",
    [
        (["--std-lambda", "0.5"], "--teacher"),
        (["--kept-lr", "0.001"], "--rollback-periods"),
        (["--period-decay-epoch", "3"], "--rollback-periods"),
        (["--rollback-budget", "shared"], "--rollback-periods"),
        (["--rollback-mode", "base_cy"], "--rollback-periods"),
        (["--rollback-keep", "2"], "--rollback-periods"),
    ],
)
def test_method_option_without_its_method_is_an_error(option, needs):
    with pytest.raises(ValueError, match=f"{option[0]} applies only with {needs}"):
        cli.parse_args(["train", "--root", "/x", *option])
    assert cli.parse_args(["train", "--root", "/x"]).std_lambda == 0.8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rollback-periods", "4", "--rollback-budget", "shared", "--epochs", "42"], "must be a multiple of"),
        (["--rollback-periods", "3", "--rollback-keep", "2"], "two-period scheme"),
        (["--dataset", "cifar10", "--head", "rolling_back"], "cifar10 runs use the cifar head"),
        (["--arch", "mgn", "--head-init", "he"], "MGN has its own"),
        (["--arch", "resnet50", "--mgn-reductions", "shared"], "only for the MGN networks"),
        (["--sampler", "random", "--triplet-weight", "1"], "a triplet loss needs P x K batches"),
        (["--arch", "mgn", "--sampler", "random"], "a triplet loss needs P x K batches"),
    ],
)
def test_paper_options_that_do_not_fit_are_errors(argv, message):
    with pytest.raises(ValueError, match=message):
        cli.parse_args(["train", "--root", "/x", *argv])


def test_rolling_back_options_resolve_to_the_papers_defaults():
    args = cli.parse_args(["train", "--root", "/x", "--rollback-periods", "4"])
    assert (args.rollback_budget, args.rollback_mode, args.rollback_keep) == ("per_period", "roll_back", None)


def test_std_run_reports_the_teacher_and_checks_feature_sizes(chain, tmp_path, capsys):
    base, _ = chain
    teacher = base / "run" / "1_market1501" / "last.pt"
    out = tmp_path / "std"
    capsys.readouterr()
    assert (
        main(
            [
                *train_args(
                    out,
                    "--arch",
                    "resnet34",
                    "--root",
                    str(base / "a"),
                    "--teacher",
                    str(teacher),
                    "--std-lambda",
                    "0.8",
                )
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    teacher_row = next(line for line in printed.split("network")[-1].splitlines() if "teacher ptl_resnet34" in line)
    params = load_checkpoint(teacher)["meta"]["parameters"]
    assert f"{params / 1e6:7.2f}M" in teacher_row  # the final table has the teacher row, with its size
    rows = read_csv(out / "metrics.csv")
    assert rows[0]["l1"] > 0 and rows[0]["ce"] > 0
    meta = load_checkpoint(out / "last.pt")["meta"]
    # the teacher's metrics are those of the teacher checkpoint evaluated on this set
    assert main(["eval", "--checkpoint", str(teacher), "--root", str(base / "a"), "--workers", "0"]) == 0
    assert f"{100 * meta['teacher']['metrics']['mAP']:.2f}%" in capsys.readouterr().out
    assert (
        main(
            [
                *train_args(
                    tmp_path / "bad", "--arch", "resnet50", "--root", str(base / "a"), "--teacher", str(teacher)
                ),
                "--last-stride",
                "2",
            ]
        )
        == 2
    )
    assert "student's feature size (2048) differs from the teacher's (512)" in capsys.readouterr().err


def test_rollback_run_logs_periods_and_rates(chain, tmp_path):
    base, _ = chain
    out = tmp_path / "rb"
    assert (
        main(
            [
                *train_args(
                    out,
                    "--arch",
                    "resnet34",
                    "--root",
                    str(base / "b"),
                    "--lr",
                    "0.05",
                    "--rollback-periods",
                    "2",
                    "--period-epochs",
                    "2",
                    "--eval-every",
                    "0",
                )
            ]
        )
        == 0
    )
    rows = read_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]  # --epochs is replaced by periods x period epochs
    assert [r["period"] for r in rows] == [1, 1, 2, 2] and [r["rollback"] for r in rows] == [None, None, 2, None]
    assert [r["lr_B1"] for r in rows] == pytest.approx([0.05, 0.005, 0.005, 0.0005])
    assert [r["lr_B2"] for r in rows] == pytest.approx([0.05, 0.005, 0.05, 0.005])
    assert [r["lr_head"] for r in rows] == pytest.approx([0.5, 0.05, 0.05, 0.005])
    base_cy = tmp_path / "base_cy"  # the control: one shared 4-epoch budget, restarts, nothing rolled back
    argv = ["--arch", "resnet34", "--root", str(base / "b"), "--lr", "0.05", "--epochs", "4", "--eval-every", "0"]
    argv += ["--rollback-periods", "2", "--rollback-budget", "shared", "--rollback-mode", "base_cy"]
    assert main([*train_args(base_cy, *argv)]) == 0
    rows = read_csv(base_cy / "metrics.csv")
    assert [r["period"] for r in rows] == [1, 1, 2, 2] and not any(r.get("rollback") for r in rows)
    assert [r["lr_B2"] for r in rows] == pytest.approx([0.05, 0.005, 0.05, 0.005])
    assert (
        main(
            [*train_args(tmp_path / "bad", "--arch", "resnet34", "--root", str(base / "b"), "--rollback-periods", "6")]
        )
        == 2
    )
    assert main([*train_args(tmp_path / "bad", "--root", str(base / "b"), "--rollback-periods", "-1")]) == 2
