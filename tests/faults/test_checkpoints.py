"""Hostile checkpoint and weights files: bounded parsing (shared references, deep nesting, huge shapes in the
metadata), and a pretrained file of another architecture as one line naming a few keys."""

import pickle
import textwrap

import pytest
import torch
from torch import nn

from ptl_ext.errors import CheckpointError, UserError, WeightsMismatchError
from ptl_ext.models import load_pretrained
from ptl_ext.train import load_checkpoint, save_checkpoint
from ptl_ext.train.checkpoint import FORMAT, VERSION, content_digest, model_from_checkpoint


def payload(state, digest="0" * 64):
    return {"format": FORMAT, "version": VERSION, "state": state, "digest": digest}


def test_a_kilobyte_checkpoint_of_shared_references_is_refused_quickly(tmp_path, util):
    """2^40 leaves through shared lists in ~1 kB: the digest walk is bounded (a subprocess, so a hang fails)."""
    shared = [0]
    for _ in range(40):
        shared = [shared, shared]
    path = util.write_archive(tmp_path / "shared.pt", pickle.dumps(payload({"model": shared}), protocol=2))
    assert path.stat().st_size < 2000
    code = f"""
        from ptl_ext.errors import CheckpointError
        from ptl_ext.train import load_checkpoint
        try:
            load_checkpoint({str(path)!r})
        except CheckpointError as exc:
            print("refused:", exc)
    """
    done = util.run_python(textwrap.dedent(code), timeout=60)
    assert "refused:" in done.stdout and "more than" in done.stdout, done.stdout + done.stderr


def test_a_deeply_nested_checkpoint_is_a_checkpoint_error_not_a_recursion_error(tmp_path, util):
    depth = 50000
    body = (  # a hand-written protocol-2 pickle: {"format": ..., "state": {"model": [[[...]]]}} 50000 lists deep
        b"\x80\x02}(X\x06\x00\x00\x00formatX\x12\x00\x00\x00ptl_ext.checkpointX\x07\x00\x00\x00versionK\x01"
        b"X\x06\x00\x00\x00digestX\x01\x00\x00\x000X\x05\x00\x00\x00state}X\x05\x00\x00\x00model"
        + b"]" * depth
        + b"a" * (depth - 1)
        + b"su."
    )
    path = util.write_archive(tmp_path / "deep.pt", body)
    with pytest.raises(CheckpointError, match="nested deeper"):
        load_checkpoint(str(path))


def test_the_bounds_leave_real_checkpoints_alone(tmp_path):
    state = {"model": nn.Linear(4, 3).state_dict(), "history": [{"epoch": i, "loss": 0.5} for i in range(500)]}
    save_checkpoint(str(tmp_path / "ok.pt"), state)
    loaded = load_checkpoint(str(tmp_path / "ok.pt"))
    assert content_digest(loaded) == content_digest(state)


def test_metadata_asking_for_a_huge_network_is_refused_before_it_is_built(tmp_path, util):
    """num_classes 10^11 in meta: the network is first built without memory and compared with the weights."""
    code = """
        import resource, torch
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
        from ptl_ext.models import create_model
        from ptl_ext.train.checkpoint import model_from_checkpoint
        net = create_model("densenet_bc100", 10, (32, 32), head="cifar")
        meta = dict(arch="densenet_bc100", num_classes=10**11, height=32, width=32, head="cifar")
        try:
            model_from_checkpoint({"meta": meta, "model": net.state_dict()}, "--checkpoint x.pt")
        except ValueError as exc:
            print("refused:", exc)
    """
    done = util.run_python(textwrap.dedent(code), timeout=300)
    assert "refused: --checkpoint x.pt: the checkpoint's network differs" in done.stdout, done.stdout + done.stderr


def test_a_fitting_meta_still_rebuilds_the_network():
    from ptl_ext.models import create_model

    net = create_model("densenet_bc100", 10, (32, 32), head="cifar")
    meta = dict(arch="densenet_bc100", num_classes=10, height=32, width=32, head="cifar")
    rebuilt = model_from_checkpoint({"meta": meta, "model": net.state_dict()})
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), net.state_dict().values()))


def test_pretrained_weights_of_another_architecture_are_one_line_listing_a_few_keys(tmp_path):
    other = nn.ModuleDict({f"block{i}": nn.Linear(2, 2) for i in range(40)})
    torch.save(other.state_dict(), tmp_path / "other.pth")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3))
    with pytest.raises(WeightsMismatchError) as info:
        load_pretrained(model, tmp_path / "other.pth")
    message = str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, RuntimeError)
    assert "\n" not in message and "another architecture" in message
    assert message.count("weight") + message.count("bias") <= 12 and "more)" in message


def test_pretrained_weights_of_another_architecture_from_the_cli(market, tmp_path, cli, util):
    from ptl_ext.models import create_model

    torch.save(create_model("densenet_bc100", 10, (32, 32), head="cifar").state_dict(), tmp_path / "dn.pth")
    argv = util.train_argv(market, tmp_path / "run", "--pretrained", tmp_path / "dn.pth")
    argv[argv.index("densenet_bc100")] = "resnet34"
    status, err = cli(*argv)
    assert status == 2 and "does not match ResNet" in util.one_line(err)
