"""Option checking: config files and option dicts pass the command line's checks, before any data is read."""

import pytest

from ptl_ext.cli import OptionError, main, parse_args, train_options
from ptl_ext.cli.option_types import default_of


@pytest.mark.parametrize(
    "line, key, expected",
    [
        ('loss = "focal"', "loss", "expected one of auto, ce, mgn"),
        ('metric = "manhattan"', "metric", "expected one of euclidean, cosine"),
        ('flip = "false"', "flip", "expected true or false"),
        ('normalize = "false"', "normalize", "expected true or false"),
        ('rerank = "false"', "rerank", "expected true or false"),
        ("epochs = true", "epochs", "expected an integer"),
        ('lr = "0.1"', "lr", "expected a number"),
        ("momentum = 2", "momentum", "< 1.0"),
        ("epochs = 0", "epochs", ">= 1"),
        ("erasing = 1.5", "erasing", "<= 1.0"),
        ("lr = nan", "lr", "expected a number"),
        ("last_stride = 3", "last_stride", "expected one of 1, 2"),
        ("k1 = 0", "k1", ">= 1"),
        ("lambda = 1.5", "lambda", "<= 1.0"),
        ("aqe_k = -1", "aqe_k", ">= 0"),
    ],
)
def test_config_file_values_are_checked_like_the_command_line(tmp_path, capsys, line, key, expected):
    config = tmp_path / "run.toml"
    config.write_text(line + "\n")
    # the root does not exist: the option error must come first, before any data is read
    code = main(["train", "--config", str(config), "--root", str(tmp_path / "no-data")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"--config {config}: option {key}: " in err and expected in err


def test_unknown_config_key_is_named(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text("epochs = 2\nlearning_rate = 0.1\n")
    assert main(["train", "--config", str(config), "--root", str(tmp_path)]) == 2
    assert "unknown options learning_rate" in capsys.readouterr().err


def test_command_line_errors_are_one_line(capsys):
    for argv in (
        ["train", "--lr", "inf"],
        ["train", "--momentum", "2"],
        ["train", "--arch", "nope"],
        ["synth", "out", "--junk", "-3"],
        ["train", "--pretrained", "a.pth", "--init-from", "b.pt"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("ptl: error:") and err.count("\n") == 1, argv


def test_debug_shows_the_traceback_of_a_user_error():
    with pytest.raises(OptionError, match="--lr"):
        main(["--debug", "train", "--lr", "nan"])


def test_train_options_take_the_library_defaults():
    from ptl_ext.data.config import DataConfig
    from ptl_ext.models import model_info
    from ptl_ext.train import TrainConfig

    args = train_options(root="/data", epochs=3)
    assert args.epochs == 3 and args.lr == default_of(TrainConfig, "lr")
    assert (args.height, args.width) == model_info(args.arch).input_size
    assert (args.p, args.k) == (DataConfig.p, DataConfig.k)
    assert train_options(arch="mgn").height == model_info("mgn").input_size[0] == 384
    with pytest.raises(OptionError, match="option momentum"):
        train_options(momentum=1.5)
    with pytest.raises(OptionError, match="unknown options moment"):
        train_options(moment=0.5)


def test_config_keys_are_option_names_or_destinations(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("lambda = 0.5\naqe = 3\nk1 = 10\n")
    args = parse_args(["train", "--config", str(config)])
    assert (args.lambda_value, args.aqe_k, args.k1) == (0.5, 3, 10)


def test_old_v2_spelling_names_the_ptl_v2_network():
    args = parse_args(["train", "--arch", "ptl_resnet34", "--v2"])
    assert args.arch == "ptl_v2_resnet34" and not args.v2
