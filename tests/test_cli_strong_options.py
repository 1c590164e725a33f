"""``ptl train``'s strong-baseline options reach TrainConfig, the network and the checkpoint meta."""

import pytest

from ptl_ext.cli import OptionError, main, train_options
from ptl_ext.runs.model import build_model
from ptl_ext.runs.train import train_config
from ptl_ext.train import TrainConfig


def test_defaults_are_the_papers_recipe():
    args = train_options(root="/data")
    config = train_config(args.spec, "t")
    assert (config.optimizer, config.warmup_epochs) == (TrainConfig.optimizer, TrainConfig.warmup_epochs) == ("sgd", 0)
    assert args.head == args.spec.model.head == "reid"
    assert train_options(root="/data", dataset="cifar10", arch="densenet_bc100").head == "cifar"


def test_strong_recipe_reaches_the_config_and_the_network():
    from ptl_ext.models import BNNeckHead

    args = train_options(
        root="/data",
        arch="mobilenet_v2",
        optimizer="adam",
        lr=3.5e-4,
        adam_beta2=0.99,
        warmup_epochs=10,
        warmup_factor=0.1,
        head="bnneck",
        height=64,
        width=64,
    )
    config = train_config(args.spec, "t")
    assert (config.optimizer, config.lr, config.adam_beta2, config.warmup_epochs) == ("adam", 3.5e-4, 0.99, 10)
    assert isinstance(build_model(args.spec, 5, (64, 64)).head, BNNeckHead)


def test_bad_values_are_one_line_errors(capsys):
    bad = (["--optimizer", "rmsprop"], ["--adam-beta1", "1"], ["--warmup-factor", "0"])
    for argv in (["train", *options] for options in bad):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("ptl: error:") and err.count("\n") == 1, argv
    with pytest.raises(OptionError, match="--head bnneck"):
        train_options(arch="mgn", head="bnneck")
