"""configs/: every paper config matches its row of configs/paper_rows.toml (the papers' tables as printed),
every file passes `ptl train --dry-run`, and the families run one epoch on tiny data.

The row checks derive what a config must set from the row itself (network, dataset or chain, method,
hyper-parameters, printed numbers) and from the recipe each paper states, independently of
scripts/make_paper_configs.py, which writes the files. The family runs use the files as a user would
(`--config FILE --root DIR`), overriding only the sizes on the command line, in a temporary working folder
so the files' relative run folders (and the STD teacher paths between them) are used as written.
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
FILES = sorted(
    os.path.relpath(p, CONFIGS)
    for p in glob.glob(os.path.join(CONFIGS, "**", "*.toml"), recursive=True)
    if os.path.basename(p) != "paper_rows.toml"
)
TINY = [
    "--batch-size",
    "8",
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


def rows():
    with open(os.path.join(CONFIGS, "paper_rows.toml"), "rb") as fh:
        return tomllib.load(fh)["row"]


ROWS = rows()
PAPER_FILES = [f for f in FILES if f.startswith("paper/")]
EXTRA_FILES = [f for f in FILES if f.startswith("extra/")]
BACKBONES = {
    "ResNet-34": "resnet34",
    "ResNet-50": "resnet50",
    "ResNet-101": "resnet101",
    "DenseNet-161": "densenet161",
    "DenseNet-100": "densenet_bc100",
    "MGN": "mgn",
}
LISTED = {"Market-Duke": "market_duke", "Market": "market1501", "Duke": "dukemtmc_reid", "MSMT17": "msmt17"}
PAPER_TITLE = {"PTL": "PTL paper", "rolling-back": "rolling-back paper"}


def test_every_row_has_one_config_and_every_paper_config_a_row():
    configs = [row["config"] for row in ROWS]
    assert len(configs) == len(set(configs)), "one config per row"
    assert sorted(configs) == PAPER_FILES
    assert set(FILES) == set(PAPER_FILES) | set(EXTRA_FILES), "configs live under paper/ or extra/"
    tables = {(row["paper"], row["table"]) for row in ROWS}
    assert tables == {("PTL", t) for t in ("I", "II", "III", "IV", "V", "VI", "VII")} | {
        ("rolling-back", t) for t in ("1", "2", "3", "4", "5")
    }
    with open(os.path.join(CONFIGS, "README.md")) as fh:
        index = fh.read()
    assert all(f"`{f}`" in index for f in FILES), "configs/README.md lists every file"
    with open(os.path.join(os.path.dirname(CONFIGS), "README.md")) as fh:
        readme = fh.read()
    first = ["mAP" if "mAP" in row else "top1_error" for row in ROWS]
    shown = [f"`{row['config'].removeprefix('paper/')}` | {key} {row[key]}" for row, key in zip(ROWS, first)]
    assert all(line in readme for line in shown), "README's reproduction table shows every row with its number"


@pytest.mark.parametrize("name", EXTRA_FILES)
def test_extra_configs_are_not_labelled_as_the_papers(name):
    text = open(config(name)).read()
    assert text.startswith("# Not a row of either paper.") and "paper" not in read_toml(config(name))


def printed(value):
    """A printed number as a float: "77.50" -> 77.5, "5.92%" -> 5.92."""
    return float(value.rstrip("%"))


def expected_method(row, args):
    """What the row's method and hyper-parameters require of the resolved options."""
    hyper = row.get("hyper", {})
    if row["method"] == "std":
        assert args.teacher and args.std_lambda == printed(hyper.get("lambda", "0.8"))
        if row["table"] in ("V", "VI"):  # the student starts from a network fine-tuned before (section VI-H)
            assert args.init_from and not args.pretrained
    else:
        assert args.teacher is None
    if row["method"] == "rolling-back":
        periods = 2 if "remain" in hyper else int(hyper.get("period", "4"))
        assert args.rollback_periods == periods and args.rollback_mode == "roll_back"
        assert args.rollback_budget == "per_period" and args.period_epochs == 40 and args.period_decay_epoch == 20
        assert args.kept_lr == 0.001
        if "remain" in hyper:
            assert args.rollback_keep == int(hyper["remain"].removeprefix("Block"))
    else:
        assert args.rollback_periods == 0
    if "batch" in hyper:
        assert args.sampler == "random" and args.batch_size == int(hyper["batch"])
    if "list" in hyper:
        steps = [LISTED[step] for step in hyper["list"].split(" to ")]
        if row["method"] == "std":  # the last dataset with STD; the earlier ones are in the student's start
            assert args.dataset == steps[-1] and args.chain is None
        else:
            assert args.chain.split(",") == steps


def expected_recipe(row, args):
    """The recipe each paper states (section VI-B; MGN's own; the rolling-back paper's Implementation detail)."""
    if row["paper"] == "rolling-back":
        assert (args.height, args.width, args.sampler, args.batch_size) == (288, 144, "random", 32)
        assert (args.erasing, args.pad, args.head, args.head_init) == (0.0, 0, "rolling_back", "he")
        assert (args.lr, args.head_lr, args.momentum, args.nesterov, args.weight_decay) == (0.01, 0.1, 0.9, True, 5e-4)
        assert args.loss == "ce" and args.triplet_weight == 0 and args.flip and not args.normalize
        if row["method"] == "fine-tune":  # period 1: one 40-epoch period, x0.1 at epoch 20
            assert (args.epochs, args.step_size) == (40, 20)
    elif row["table"] == "VII":
        assert args.augment == row["column"].endswith("+") and args.task == "classification"
    elif row["backbone"] == "MGN":
        assert (args.height, args.width, args.p * args.k, args.loss, args.mgn_reductions) == (
            384,
            128,
            16,
            "mgn",
            "shared",
        )
        assert (args.epochs, args.lr, args.step_size, args.erasing, args.pad) == (80, 0.01, 40, 0.0, 0)
        assert (args.triplet_weight, args.triplet_margin) == (1.0, 1.2)
    else:
        assert (args.height, args.width, args.epochs, args.lr, args.step_size) == (256, 128, 50, 0.01, 10)
        assert (args.erasing, args.pad, args.loss, args.triplet_weight, args.flip) == (0.0, 0, "ce", 0.0, False)
        assert args.sampler == "random"  # cross-entropy only: no identity structure needed
        assert args.batch_size == int(row.get("hyper", {}).get("batch", "32"))  # Table II footnote: 32
        if args.arch.startswith(("resnet", "ptl_resnet")):
            assert args.last_stride == 2


@pytest.mark.parametrize("row", ROWS, ids=[row["config"] for row in ROWS])
def test_config_is_its_row_as_printed(row):
    args = parse_args(["train", "--config", config(row["config"])])
    base = BACKBONES[row["backbone"]]
    arch = {"ptl": f"ptl_{base}", "ptl-v2": f"ptl_v2_{base}"}.get(row["method"], base)
    assert args.arch == arch
    assert (args.chain or "").split(",")[-1] == row["dataset"] if args.chain else args.dataset == row["dataset"]
    expected_method(row, args)
    expected_recipe(row, args)
    paper = args.paper
    cited = f"Table {row['table']}, row {row['row']}, column {row['column']}"
    assert paper["source"].startswith(PAPER_TITLE[row["paper"]]) and cited in paper["source"]
    for key in ("mAP", "rank1", "rank5", "rank10", "top1_error"):
        assert paper.get(key) == (printed(row[key]) if key in row else None), key
    assert paper.get("parameters") == (int(row["params"].removesuffix("m")) * 10**6 if "params" in row else None)
    text = open(config(row["config"])).read()
    assert text.splitlines()[0] == f"# {paper['source']}" and "# departs: " in text


@pytest.mark.parametrize("name", FILES)
def test_every_config_passes_dry_run(name, tmp_path, capsys, monkeypatch):
    # no --root and a working folder without data: a dry run reads nothing
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", config(name), "--dry-run"]) == 0
    out = capsys.readouterr().out
    settings = out.split("\n[paper]\n")[0]
    resolved = tomllib.loads(settings)
    file = read_toml(config(name))
    # the printed settings are the file's options after the defaults are resolved: a valid config again
    assert {k: v for k, v in resolved.items() if k in file} == {k: v for k, v in file.items() if k != "paper"}
    assert resolved["task"] in ("reid", "classification") and "loss" in resolved
    assert "# H200 epoch time" in out
    assert ("\n[paper]\nsource = " in out) == name.startswith("paper/")
    assert not os.listdir(tmp_path)


def test_dry_run_prints_the_h200_cost_of_a_measured_row(capsys):
    assert main(["train", "--config", config("paper/ptl/table2_market1501/densenet161_ptl.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    cost = "# H200 epoch time (ptl_densenet161, batch 32, 256x128, bf16): market1501 405 steps, 27-42 s per epoch"
    assert cost in out


def test_dry_run_output_is_a_config_that_resolves_to_the_same_run(tmp_path, capsys):
    name = config("paper/rolling_back/table2_resnet50/market1501_period4.toml")
    assert main(["train", "--config", name, "--dry-run", "--period-epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "4 x 2 = 8 epochs" in out
    (tmp_path / "again.toml").write_text(out.split("\nnote:")[0])
    first = vars(parse_args(["train", "--config", name, "--period-epochs", "2"]))
    again = vars(parse_args(["train", "--config", str(tmp_path / "again.toml")]))
    drop = ("config", "paper")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in again.items() if k not in drop}
    assert again["paper"] == first["paper"]


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
def msmt17(data, tmp_path_factory):
    return as_msmt17(data, tmp_path_factory.mktemp("msmt17") / "MSMT17_V1")


@pytest.fixture(scope="module")
def ptl_row(msmt17, tmp_path_factory):
    """Table I's ResNet-50+PTL row run in its own working folder: (folder, run folder, output, paper.csv rows)."""
    cwd = tmp_path_factory.mktemp("work")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        return (cwd, *run_row("paper/ptl/table1_msmt17/resnet50_ptl.toml", msmt17))


def test_resnet_row_runs_and_is_compared_with_the_paper(ptl_row):
    cwd, folder, out, rows = ptl_row
    state = load_checkpoint(cwd / folder / "last.pt")
    assert state["meta"]["arch"] == "ptl_resnet50" and state["meta"]["dataset"] == "msmt17"
    assert "note: the paper's row starts from pre-trained weights (resnet50-0676ba61.pth)" in out
    assert float(rows["mAP"]["ours"]) == pytest.approx(100 * state["history"][-1]["mAP"], abs=1e-3)
    assert rows["mAP"]["paper"] == "32.58" and rows["parameters"]["paper"] == "35000000"
    assert int(rows["parameters"]["ours"]) == state["meta"]["parameters"]


def test_mgn_row_against_the_printed_numbers(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, out, rows = run_row("paper/ptl/table2_market1501/mgn_ptl.toml", data, "--height", "96", "--width", "32")
    assert rows["mAP"]["paper"] == "87.34" and rows["rank1"]["paper"] == "94.83"
    assert float(rows["mAP"]["difference"]) == pytest.approx(float(rows["mAP"]["ours"]) - 87.34, abs=1e-3)
    assert "87.34%" in out


def test_rolling_back_row_from_a_torchvision_checkpoint(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "resnet34-b627a593.pth"
    torch.save(models.resnet34().state_dict(), weights)  # the torchvision key format
    folder, out, rows = run_row(
        "paper/rolling_back/table3_networks/resnet34_market1501_period2.toml",
        data,
        "--pretrained",
        str(weights),
        "--period-epochs",
        "1",
        "--period-decay-epoch",
        "1",
    )
    assert "note:" not in out and rows["mAP"]["paper"] == "73.63"
    state = load_checkpoint(os.path.join(folder, "last.pt"))
    assert len(state["history"]) == 2 and state["meta"]["head"] == "rolling_back"


@pytest.mark.slow
def test_cifar_row(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "cifar"
    assert main(["synth", str(root), "--format", "cifar10", "--train-per-class", "2", "--test-per-class", "1"]) == 0
    _, _, rows = run_row(
        "paper/ptl/table7_cifar/densenet100_ptl_v2_cifar10.toml",
        root,
        "--batch-size",
        "8",
        "--height",
        "32",
        "--width",
        "32",
    )  # CIFAR images are 32x32
    assert 0 <= float(rows["top1_error"]["ours"]) <= 100 and rows["top1_error"]["paper"] == "5.38"


@pytest.mark.slow
def test_densenet_rows_and_the_std_row_taught_by_the_ptl_row(msmt17, tmp_path, monkeypatch):
    # the teacher row writes the checkpoint the STD row's file names, in the same working folder
    monkeypatch.chdir(tmp_path)
    size = ("--height", "64", "--width", "32")
    teacher, _, rows = run_row("paper/ptl/table1_msmt17/densenet161_ptl.toml", msmt17, *size)
    assert rows["parameters"]["paper"] == "42000000" and os.path.isfile(os.path.join(teacher, "best.pt"))
    folder, out, rows = run_row("paper/ptl/table1_msmt17/densenet161_ptl_std.toml", msmt17, *size)
    assert f"STD teacher {teacher}/best.pt" in out and rows["mAP"]["paper"] == "41.38"
    meta = load_checkpoint(os.path.join(folder, "last.pt"))["meta"]
    assert meta["arch"] == "densenet161" and meta["teacher"]["checkpoint"] == os.path.abspath(
        os.path.join(teacher, "best.pt")
    )


@pytest.mark.slow
def test_chain_row_over_three_datasets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parent = tmp_path / "datasets"
    synth(parent / "DukeMTMC-reID", "--seed", "1")
    synth(parent / "Market-1501-v15.09.15", "--seed", "2")
    as_msmt17(synth(tmp_path / "msmt-source", "--seed", "3"), parent / "MSMT17_V1")
    folder, out, rows = run_row(
        "paper/ptl/table5_chains/densenet161_duke_market_msmt17.toml", parent, "--height", "64", "--width", "32"
    )
    steps = sorted(os.listdir(folder))
    assert steps[:3] == ["1_dukemtmc_reid", "2_market1501", "3_msmt17"] and "paper.csv" in steps
    last = load_checkpoint(os.path.join(folder, "3_msmt17", "last.pt"))
    assert float(rows["mAP"]["ours"]) == pytest.approx(100 * last["history"][-1]["mAP"], abs=1e-3)
    assert float(rows["mAP"]["paper"]) == 41.80 and out.count("ours beside the paper:") == 1
