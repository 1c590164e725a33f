import os
import subprocess
import sys

import pytest
import torch

from ptl_ext.cli import parse_args, run_eval
from ptl_ext.data import make_synthetic_market
from ptl_ext.train import distributed, load_checkpoint
from ptl_ext.train.metrics import read_csv


def test_torchrun_two_cpu_processes_gloo(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    make_synthetic_market(
        data,
        num_train_ids=6,
        num_test_ids=5,
        num_cams=3,
        images_per_cam=2,
        num_distractors=3,
        num_junk=1,
        height=32,
        width=16,
        seed=5,
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ptl_ext",
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
        "3",
        "--k",
        "2",
        "--epochs",
        "1",
        "--workers",
        "0",
        "--eval-batch-size",
        "8",
        "--triplet-weight",
        "1",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "2 process(es)" in result.stdout
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and rows[0]["mAP"] is not None
    state = load_checkpoint(out / "last.pt")
    assert len(state["rng"]) == 2  # each rank's random state, for an exact resume
    # evaluating the DDP-trained weights in one process gives the same numbers: the two ranks' shards of
    # query and gallery features were gathered back in dataset order (on the CPU, as the run: a CUDA
    # evaluation would differ by more than the 1e-6 compared here)
    metrics = run_eval(
        parse_args(
            [
                "eval",
                "--checkpoint",
                str(out / "last.pt"),
                "--workers",
                "0",
                "--eval-batch-size",
                "8",
                "--device",
                "cpu",
            ]
        )
    )
    for key in ("mAP", "rank1", "mINP"):
        assert metrics[key] == pytest.approx(rows[0][key], abs=1e-6)


def test_reductions_run_on_the_backend_device():
    """An NCCL group reduces CUDA tensors only; gloo (and a mixed cpu:gloo,cuda:nccl group) the CPU ones."""
    assert distributed.reduction_device("nccl") == torch.device("cuda")
    assert distributed.reduction_device("gloo") == torch.device("cpu")
    assert distributed.reduction_device("cpu:gloo,cuda:nccl") == torch.device("cpu")


def test_all_reduce_mean_uses_the_backend_device(monkeypatch):
    """Without NCCL at hand: the backend name is mocked and the collective records what it was given."""
    seen = []

    def fake_all_reduce(tensor):
        seen.append(tensor.device)
        tensor.mul_(2)  # two ranks holding the same values

    info = distributed.DistInfo(rank=0, world_size=2)
    monkeypatch.setattr(distributed.dist, "all_reduce", fake_all_reduce)
    monkeypatch.setattr(distributed.dist, "get_backend", lambda: "gloo")
    assert distributed.all_reduce_mean({"b": 3.0, "a": 1.5}, info) == {"a": 1.5, "b": 3.0}
    assert seen == [torch.device("cpu")]
    monkeypatch.setattr(distributed.dist, "get_backend", lambda: "nccl")
    if torch.cuda.is_available():
        assert distributed.all_reduce_mean({"a": 1.0}, info) == {"a": 1.0}
        assert seen[-1].type == "cuda"
    else:  # the tensor is headed for CUDA, which this machine lacks
        with pytest.raises((AssertionError, RuntimeError), match="CUDA"):
            distributed.all_reduce_mean({"a": 1.0}, info)
        assert len(seen) == 1
