"""Kill-and-resume soak (opt-in): ``ptl train`` killed with SIGKILL at random moments and resumed each time ends
with exactly the weights and metrics of an uninterrupted run, and no temporary or lock file left behind.

Skipped unless ``PTL_SOAK`` is set to the number of kills (``PTL_SOAK=48 pytest tests/faults/test_soak.py``);
``PTL_SOAK_SEED`` picks other kill moments, ``PTL_SOAK_EPOCHS`` the run's length (default ``2 * kills + 4``).
Its last figures are in docs/reliability.md.
"""

import csv
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

from ptl_ext.train import load_checkpoint

KILLS = int(os.environ.get("PTL_SOAK", "0"))
EPOCHS = int(os.environ.get("PTL_SOAK_EPOCHS", str(2 * KILLS + 4)))  # enough that most kills land mid-training

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(KILLS <= 0, reason="opt-in: set PTL_SOAK=N (kills) to run the kill-and-resume soak"),
]


def command(util, market, out, resume):
    argv = util.train_argv(market, out, "--epochs", str(EPOCHS), "--seed", "3")
    return [sys.executable, "-m", "ptl_ext", *argv, *(["--resume"] if resume else [])]


def environment(util):
    return {**os.environ, "PYTHONPATH": util.REPO, "OMP_NUM_THREADS": "1"}


def rows(out):
    """metrics.csv without its wall-clock columns."""
    with open(out / "metrics.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if "time" not in k} for row in csv.DictReader(fh)]


def test_sigkill_at_random_moments_loses_nothing_and_resumes_exactly(market, tmp_path, util):
    reference = tmp_path / "reference"
    subprocess.run(command(util, market, reference, False), check=True, env=environment(util), capture_output=True)
    rng = random.Random(int(os.environ.get("PTL_SOAK_SEED", "0")))
    out, kills, starts, resumes, epochs_at_kill = tmp_path / "soaked", 0, 0, 0, []
    while True:
        resume = (out / "last.pt").exists()
        resumes += resume
        process = subprocess.Popen(
            command(util, market, out, resume), env=environment(util), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        starts += 1
        if kills < KILLS:
            try:
                process.wait(timeout=rng.uniform(1.0, 9.0))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                saved = out / "last.pt"
                epochs_at_kill.append(load_checkpoint(str(saved))["epoch"] if saved.exists() else 0)
                continue
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()
        break
    print(
        f"soak: {kills} SIGKILLs over {starts} starts of a {EPOCHS}-epoch run ({resumes} resumed from last.pt); "
        f"epochs saved at the kills: {epochs_at_kill}"
    )
    assert kills == KILLS, f"the run ended after {kills} kills: raise PTL_SOAK_EPOCHS"
    final, expected = load_checkpoint(str(out / "last.pt")), load_checkpoint(str(reference / "last.pt"))
    assert final["epoch"] == expected["epoch"] == EPOCHS
    for name, tensor in expected["model"].items():  # same machine, same code path: the resume is exact
        assert torch.equal(final["model"][name], tensor), name
    assert rows(out) == rows(reference)
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-") or n == ".run.lock"]
