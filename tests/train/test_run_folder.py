"""The run folder: refused when it holds a run, locked against a second run, checked before training."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from ptl_ext.errors import RunFolderError, UserError
from ptl_ext.train.run_folder import LOCK_NAME, RunFolder

HOLDER = textwrap.dedent("""
    import sys, time
    from ptl_ext.train.run_folder import RunFolder
    folder = RunFolder(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(120)
""")


def test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"old")
    (tmp_path / "metrics.csv").write_text("epoch\n1\n")
    with pytest.raises(RunFolderError, match=f"run folder {tmp_path} already holds a run \\(last.pt, metrics.csv\\)"):
        RunFolder(tmp_path).acquire()
    assert (tmp_path / "last.pt").read_bytes() == b"old"
    with RunFolder(tmp_path, resume=True):
        assert (tmp_path / "last.pt").exists()  # a resume keeps the run
    (tmp_path / "curves.png").write_bytes(b"png")
    (tmp_path / "best.pt").write_bytes(b"best")
    with RunFolder(tmp_path, overwrite=True):
        assert sorted(os.listdir(tmp_path)) == [LOCK_NAME]  # the old run's files are gone
    assert os.listdir(tmp_path) == []  # the lock file goes with the lock
    with pytest.raises(ValueError, match="both resume and overwrite"):
        RunFolder(tmp_path, resume=True, overwrite=True)


def test_stale_temporaries_are_removed_once_the_folder_is_held(tmp_path):
    for name in (".tmp-abc123.pt", ".tmp-x.csv", "metrics.csv.tmp", "keep.txt"):
        (tmp_path / name).write_bytes(b"x" * 10)
    with RunFolder(tmp_path, resume=True):
        pass
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_a_second_run_is_refused_while_the_first_holds_the_folder_even_after_a_crash(tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"run folder {out} is in use by another run \\(pid {holder.pid}\\)"):
            RunFolder(out).acquire()
        with pytest.raises(RunFolderError, match="in use"):
            RunFolder(out, resume=True).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the kernel frees the lock, the lock file stays
        holder.wait()
    assert (out / LOCK_NAME).exists()
    with RunFolder(out) as folder:
        assert folder.held and (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    assert not folder.held


def test_folder_problems_are_reported_before_training(tmp_path, monkeypatch):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(RunFolderError, match=f"run folder {afile} is a file"):
        RunFolder(afile).acquire()
    with pytest.raises(RunFolderError, match=f"cannot create run folder {afile}/sub: {afile} is a file"):
        RunFolder(afile / "sub").acquire()
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # what an unwritable folder looks like (not as root)
    with pytest.raises(RunFolderError, match=f"run folder {tmp_path / 'ro'} is not writable"):
        RunFolder(tmp_path / "ro").acquire()
    assert issubclass(RunFolderError, UserError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_folder_is_reported(tmp_path):
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RunFolderError, match="not writable"):
            RunFolder(locked).acquire()
    finally:
        locked.chmod(0o700)
