"""Ctrl-C (SIGINT) and SIGTERM stop ``ptl train`` with one line saying how to resume and status 130 / 143; what
was saved stays whole and the resume continues from it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from ptl_ext._signals import Interrupted, exit_status, interruption_message, stop_on_sigterm
from ptl_ext.train import load_checkpoint


def start(util, market, out, epochs):
    argv = util.train_argv(market, out, "--epochs", str(epochs))
    env = {**os.environ, "PYTHONPATH": util.REPO, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ptl_ext", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for(path, process, seconds=240):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_with_a_resume_hint_and_its_status(market, tmp_path, util, signum, status):
    out = tmp_path / "run"
    process = start(util, market, out, epochs=500)
    wait_for(out / "last.pt", process)
    time.sleep(0.5)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"ptl: interrupted by {signal.Signals(signum).name}: ") and "--resume" in lines[0]
    saved = load_checkpoint(str(out / "last.pt"))  # whole, verified
    assert not [name for name in os.listdir(out) if name.startswith(".tmp-") or name == ".run.lock"]
    code = main_status(util, market, out, saved["epoch"] + 1)
    assert code == 0
    assert load_checkpoint(str(out / "last.pt"))["epoch"] == saved["epoch"] + 1


def main_status(util, market, out, epochs):
    from ptl_ext.cli import main

    return main(util.train_argv(market, out, "--epochs", str(epochs), "--resume"))


def test_the_messages_and_statuses():
    assert exit_status(KeyboardInterrupt()) == 130 and exit_status(Interrupted(signal.SIGTERM)) == 143
    assert interruption_message(KeyboardInterrupt()) == "interrupted by SIGINT"
    assert "nothing to resume" in interruption_message(Interrupted(signal.SIGTERM), "/nonexistent/run")


def test_sigterm_raises_inside_the_block_only():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted):
        with stop_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert signal.getsignal(signal.SIGTERM) is before
