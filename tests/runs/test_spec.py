"""RunSpec: one frozen, checked description of a run, built from Python, argv or a config file alike."""

import dataclasses
import json

import pytest

from ptl_ext.cli import parse_args
from ptl_ext.cli.parser import build_parser
from ptl_ext.data.config import DataConfig
from ptl_ext.errors import OptionError
from ptl_ext.runs import RunSpec, build_spec
from ptl_ext.runs.resume import SPEC_FILE, check_resumed_spec, saved_spec, spec_differences, write_spec
from ptl_ext.train import TrainConfig

CLI_ONLY = {"config", "dry_run", "v2"}  # how the command line is read, not what the run is


def test_every_train_option_is_a_field_of_the_spec():
    """Adding a ``ptl train`` option is a field of a RunSpec part plus its declaration: an option the spec
    does not hold would never reach the run."""
    _, commands = build_parser(only="train")
    dests = {action.dest for action in commands["train"]._actions if action.dest != "help"}
    assert dests - CLI_ONLY <= set(RunSpec().options())
    not_options = set(RunSpec().options()) - dests
    assert not_options == {"head_lr_factor", "kept_lr_divisor"}  # TrainConfig's multipliers: Python only


def test_build_spec_resolves_like_the_command_line(tmp_path):
    spec = build_spec(arch="mgn_ptl", root="/data", epochs=3)
    assert (spec.model.arch, spec.loss.loss, spec.data.p, spec.loss.triplet_margin) == ("ptl_mgn", "mgn", 4, 1.2)
    assert (spec.height, spec.width, spec.task) == (384, 128, "reid")
    assert isinstance(spec.data, DataConfig) and isinstance(spec.train, TrainConfig)
    assert spec.data.workers == DataConfig().workers == 2  # one home, the command line's value
    config = tmp_path / "run.toml"
    config.write_text('arch = "mgn_ptl"\nroot = "/data"\nepochs = 3\n')
    assert parse_args(["train", "--config", str(config)]).spec == spec
    assert parse_args(["train", "--arch", "mgn_ptl", "--root", "/data", "--epochs", "3"]).spec == spec
    assert build_spec(arch="ptl_resnet34", v2=True).model.arch == "ptl_v2_resnet34"


def test_spec_is_frozen_and_checked_where_it_is_built():
    spec = build_spec(root="/data")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.train.lr = 0.5  # the parts are read-only too
    with pytest.raises(ValueError, match="TrainConfig.momentum"):
        build_spec(momentum=1.5)
    with pytest.raises(ValueError, match="unknown option 'moment'"):
        RunSpec.from_options({"moment": 0.5})
    with pytest.raises(ValueError, match="cell_state must be one of"):
        build_spec(arch="ptl_resnet34", cell_state="sometimes")
    with pytest.raises(OptionError, match="--std-lambda applies only with --teacher"):
        build_spec(std_lambda=0.5)
    with pytest.raises(OptionError, match="--loss mgn does not fit --arch resnet50"):
        build_spec(arch="resnet50", loss="mgn")


def test_options_round_trip_and_replace():
    spec = build_spec(root="/data", lr=0.02, rerank=True, k1=7, aqe_k=2, out="runs/x")
    assert RunSpec.from_options(spec.options()) == spec
    assert (spec.rerank.k1, spec.aqe.k, spec.train.out_dir) == (7, 2, "runs/x")
    other = spec.replace(dataset="dukemtmc_reid", out="runs/y")
    assert (other.dataset, other.train.out_dir, other.train.lr) == ("dukemtmc_reid", "runs/y", 0.02)
    assert spec.train.out_dir == "runs/x"
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        spec.replace(lr=-1.0)


def test_the_saved_spec_is_what_a_resume_is_compared_with(tmp_path):
    spec = build_spec(root="/data", arch="resnet34", lr=0.01, seed=0, out=str(tmp_path))
    write_spec(spec, tmp_path)
    assert json.loads((tmp_path / SPEC_FILE).read_text())["lr"] == 0.01
    checkpoint = str(tmp_path / "last.pt")
    assert saved_spec(checkpoint) == spec
    # epochs may grow, the evaluation and the workers may change; the learning rate and the seed may not
    check_resumed_spec(checkpoint, spec.replace(epochs=80, rerank=True, workers=0))
    changed = spec.replace(lr=0.001, seed=5)
    assert spec_differences(spec, changed) == [("seed", 0, 5), ("lr", 0.01, 0.001)]
    with pytest.raises(OptionError, match="--seed: saved 0, given 5; --lr: saved 0.01, given 0.001"):
        check_resumed_spec(checkpoint, changed)
    # a method's options count only with the method on in both runs
    assert spec_differences(spec, spec.replace(period_epochs=3)) == []
    # a run folder without a spec file (an older run) is left to the Trainer's own comparison
    assert saved_spec(str(tmp_path / "elsewhere" / "last.pt")) is None


def test_a_spec_file_written_before_an_option_existed_still_resumes(tmp_path):
    spec = build_spec(root="/data", arch="resnet34", out=str(tmp_path))
    values = spec.options()
    for key in ("head", "head_init", "mgn_reductions", "sampler"):  # options added after this file was written
        del values[key]
    (tmp_path / SPEC_FILE).write_text(json.dumps(values))
    checkpoint = str(tmp_path / "last.pt")
    assert saved_spec(checkpoint).model.head is None  # the field's default: not recorded
    check_resumed_spec(checkpoint, spec)  # head None (not recorded) vs "reid" is no difference
    with pytest.raises(OptionError, match="--lr: saved"):
        check_resumed_spec(checkpoint, spec.replace(lr=0.5))


def test_the_paper_options_resolve_and_refuse_from_python_as_from_the_command_line():
    spec = build_spec(root="/data")
    assert (spec.model.head, spec.model.head_init, spec.model.mgn_reductions, spec.data.sampler) == (
        "reid",
        "torch",
        "separate",
        "pk",
    )
    assert (spec.method.rollback_budget, spec.method.rollback_mode) == (None, None)  # not rolling back
    assert build_spec(dataset="cifar10", arch="resnet50").model.head == "cifar"
    rolling = build_spec(rollback_periods=4)
    assert (rolling.method.rollback_budget, rolling.method.rollback_mode) == ("per_period", "roll_back")
    assert build_spec(arch="ptl_mgn", mgn_reductions="shared").model.mgn_reductions == "shared"
    refused = [
        ({"dataset": "cifar10", "arch": "resnet50", "head": "rolling_back"}, "a ReID head; cifar10 runs"),
        ({"head": "cifar"}, "--head cifar: the CIFAR head"),
        ({"arch": "ptl_mgn", "head_init": "he"}, "MGN has its own"),
        ({"mgn_reductions": "shared"}, "--mgn-reductions: only for the MGN networks"),
        ({"rollback_keep": 1}, "--rollback-keep applies only with --rollback-periods"),
        ({"rollback_periods": 4, "rollback_budget": "shared", "epochs": 30}, "must be a multiple"),
        ({"rollback_periods": 3, "rollback_keep": 1}, "two-period scheme"),
        ({"sampler": "random", "triplet_weight": 1.0}, "a triplet loss needs P x K"),
    ]
    for options, message in refused:
        with pytest.raises(OptionError, match=message):
            build_spec(**options)
    with pytest.raises(ValueError, match="rollback_mode must be one of"):
        build_spec(rollback_periods=2, rollback_mode="sideways")


def test_the_rollback_options_reach_the_schedule():
    from ptl_ext.models import create_model
    from ptl_ext.runs.methods import rollback_hook
    from ptl_ext.train import RollingBack

    model = create_model("resnet34", 5)
    shared = build_spec(
        arch="resnet34", rollback_periods=2, rollback_budget="shared", epochs=30, rollback_mode="base_cy"
    )
    method = rollback_hook(shared, model)
    assert isinstance(method, RollingBack)
    schedule = method.hook.schedule
    assert (schedule.periods, schedule.epochs_per_period, schedule.restore, schedule.keep) == (2, 15, False, None)
    paper = rollback_hook(build_spec(arch="resnet34", rollback_periods=2, rollback_keep=3, period_epochs=4), model)
    schedule = paper.hook.schedule
    assert (schedule.periods, schedule.epochs_per_period, schedule.restore, schedule.keep) == (2, 4, True, 3)


def test_an_option_added_after_the_run_was_written_is_not_compared(tmp_path):
    spec = build_spec(root="/data", arch="resnet34", out=str(tmp_path))
    older = {key: value for key, value in spec.options().items() if key != "head"}  # a file written before --head
    (tmp_path / SPEC_FILE).write_text(json.dumps(older))
    checkpoint = str(tmp_path / "last.pt")
    assert saved_spec(checkpoint).model.head is None and spec.model.head == "reid"
    check_resumed_spec(checkpoint, spec)
    with pytest.raises(OptionError, match="--lr: saved 0.01, given 0.02"):
        check_resumed_spec(checkpoint, spec.replace(lr=0.02))
