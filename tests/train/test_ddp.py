import os
import subprocess
import sys

import pytest

from ptl_ext.cli import parse_args, run_eval
from ptl_ext.data import make_synthetic_market
from ptl_ext.train import load_checkpoint
from ptl_ext.train.metrics import read_csv


def test_torchrun_two_cpu_processes_gloo(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    make_synthetic_market(data, num_train_ids=6, num_test_ids=5, num_cams=3, images_per_cam=2, num_distractors=3,
                          num_junk=1, height=32, width=16, seed=5)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "ptl_ext", "train", "--root", str(data), "--arch", "ptl_resnet34", "--height", "32",
               "--width", "16", "--p", "3", "--k", "2", "--epochs", "1", "--workers", "0", "--eval-batch-size", "8",
               "--triplet-weight", "1", "--device", "cpu", "--no-progress", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "2 process(es)" in result.stdout
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == 1 and rows[0]["mAP"] is not None
    state = load_checkpoint(out / "last.pt")
    assert len(state["rng"]) == 2  # each rank's random state, for an exact resume
    # evaluating the DDP-trained weights in one process gives the same numbers: the two ranks' shards of
    # query and gallery features were gathered back in dataset order
    metrics = run_eval(parse_args(["eval", "--checkpoint", str(out / "last.pt"), "--workers", "0",
                                   "--eval-batch-size", "8"]))
    for key in ("mAP", "rank1", "mINP"):
        assert metrics[key] == pytest.approx(rows[0][key], abs=1e-6)
