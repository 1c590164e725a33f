"""Size options are checked against what they would allocate (one line above the machine's memory, raised or
lowered with PTL_MEMORY_LIMIT), and config files cannot overwrite a run or smuggle in unknown keys."""

import pytest
import torch

from ptl_ext import _checks
from ptl_ext.data import build_reid_eval_loaders, market1501
from ptl_ext.reid import compute_distance


def test_the_limit_is_the_machines_memory_or_the_environment(monkeypatch):
    monkeypatch.delenv(_checks.MEMORY_LIMIT_ENV, raising=False)
    assert _checks.memory_limit() > 2**26
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "1.5G")
    assert _checks.memory_limit() == int(1.5 * 2**30)
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "512")
    assert _checks.memory_limit() == 512
    for bad in ("lots", "-1G", "0", "nanG"):
        monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, bad)
        with pytest.raises(ValueError, match="PTL_MEMORY_LIMIT must be a size"):
            _checks.memory_limit()


def test_an_allocation_above_the_limit_names_what_and_how_to_allow_it(monkeypatch):
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "1M")
    assert _checks.allocation(2**20, "x") == 2**20
    with pytest.raises(
        ValueError, match=r"a thing would need 2.0 MiB, more than the limit of 1.0 MiB .*PTL_MEMORY_LIMIT"
    ):
        _checks.allocation(2**21, "a thing")


@pytest.mark.parametrize(
    "options, needle",
    [
        (["--k", "1000000000"], "p=4 x k=1000000000"),
        (["--p", "4", "--k", "2", "--height", "20000", "--width", "20000"], "images of 20000x20000"),
        (["--eval-batch-size", "100000000"], "eval_batch_size=100000000"),
    ],
)
def test_size_options_beyond_the_machine_are_one_line(market, tmp_path, cli, util, options, needle):
    status, err = cli(*util.train_argv(market, tmp_path / "run", *options))
    line = util.one_line(err)
    assert status == 2 and needle in line and "PTL_MEMORY_LIMIT" in line
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_the_limit_can_be_raised_or_lowered(market, monkeypatch):
    data = market1501(market)
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "1K")
    with pytest.raises(ValueError, match="eval_batch_size=4 images of 64x32"):
        build_reid_eval_loaders(data, 64, 32, eval_batch_size=4)
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "1G")
    assert len(build_reid_eval_loaders(data, 64, 32, eval_batch_size=4)) == 2


def test_a_distance_matrix_beyond_the_limit_is_refused_before_it_is_allocated(monkeypatch):
    monkeypatch.setenv(_checks.MEMORY_LIMIT_ENV, "1M")
    qf, gf = torch.randn(600, 4), torch.randn(600, 4)  # 600 x 600 float32 = 1.4 MB
    with pytest.raises(ValueError, match="a 600 x 600 distance matrix would need"):
        compute_distance(qf, gf)
    assert compute_distance(qf[:400], gf).shape == (400, 600)


def test_overwrite_in_a_config_file_is_refused_and_the_run_kept(trained, tmp_path, cli, util, market):
    before = (trained / "last.pt").read_bytes()
    config = tmp_path / "run.toml"
    config.write_text("overwrite = true\nepochs = 1\n")
    status, err = cli(*util.train_argv(market, trained, "--config", config))
    assert status == 2 and "only from the command line (--overwrite)" in util.one_line(err)
    assert (trained / "last.pt").read_bytes() == before
    config.write_text("overwrite = false\n")  # saying no is harmless
    from ptl_ext.cli import parse_args

    assert parse_args(util.train_argv(market, tmp_path / "x", "--config", str(config))).overwrite is False


@pytest.mark.parametrize(
    "text, needle",
    [
        ("epochs = 1\n[train]\nlr = 0.1\n", "expected flat"),
        ("epochs = 1\n[paper]\nmAP = 10\n[paper.extra]\nfoo = 1\n", "unknown keys extra"),
        ("epochs = 1\nlr.base = 0.1\n", "expected flat"),
        ("epochs = 1\nlearning_rate = 0.1\n", "unknown options learning_rate"),
    ],
)
def test_unknown_or_nested_config_keys_are_refused(tmp_path, cli, util, market, text, needle):
    """(Already refused at 2844a1e; kept here so that it stays so.)"""
    config = tmp_path / "run.toml"
    config.write_text(text)
    status, err = cli(*util.train_argv(market, tmp_path / "run", "--config", config))
    assert status == 2 and needle in util.one_line(err)


def test_a_synthetic_set_of_huge_images_is_refused_before_drawing(tmp_path, cli, util):
    status, err = cli("synth", tmp_path / "set", "--height", "100000", "--width", "100000")
    assert status == 2 and "drawing 100000x100000 images would need" in util.one_line(err)
    assert not any((tmp_path / "set").rglob("*.jpg"))
