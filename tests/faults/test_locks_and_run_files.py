"""Run folders and their files: a planted link is never followed, outputs follow the umask, a run killed before
its first checkpoint starts again, and an empty output path is a one-line error."""

import os
import stat

import pytest
import torch

from ptl_ext._io import atomic_write
from ptl_ext.errors import RunFolderError
from ptl_ext.train import RunFolder, TrainConfig, save_checkpoint
from ptl_ext.train.run_folder import LOCK_NAME


def test_a_lock_file_that_is_a_symbolic_link_is_refused_and_its_target_kept(tmp_path):
    victim = tmp_path / "someone_elses_file.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "run"
    folder.mkdir()
    os.symlink(victim, folder / LOCK_NAME)
    with pytest.raises(RunFolderError, match="symbolic link"):
        RunFolder(folder).acquire()
    assert victim.read_text() == "precious\n"
    assert os.path.islink(folder / LOCK_NAME)  # left for the user to look at


def test_a_dangling_lock_link_is_not_followed_to_create_a_file(tmp_path):
    target = tmp_path / "elsewhere" / "created.txt"
    (tmp_path / "elsewhere").mkdir()
    folder = tmp_path / "run"
    folder.mkdir()
    os.symlink(target, folder / LOCK_NAME)
    with pytest.raises(RunFolderError, match="symbolic link"):
        RunFolder(folder).acquire()
    assert not target.exists()


def test_a_run_file_that_is_a_link_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.pt"
    victim.write_bytes(b"keep me")
    folder = tmp_path / "run"
    folder.mkdir()
    os.symlink(victim, folder / "last.pt")
    save_checkpoint(str(folder / "last.pt"), {"w": torch.zeros(2)})
    assert victim.read_bytes() == b"keep me" and not os.path.islink(folder / "last.pt")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write(str(tmp_path / "metrics.csv"), lambda fh: fh.write("epoch\n"), binary=False)
        save_checkpoint(str(tmp_path / "last.pt"), {"w": torch.zeros(2)}, str(tmp_path / "best.pt"))
    finally:
        os.umask(old)
    for name in ("metrics.csv", "last.pt", "best.pt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == mode, name


def test_a_run_stopped_before_its_first_checkpoint_starts_again(tmp_path):
    """``--save-every 3`` killed in epoch 2: metrics.csv but no checkpoint; a new run must be able to start."""
    (tmp_path / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    (tmp_path / "curves.png").write_bytes(b"png")
    with pytest.warns(RuntimeWarning, match="before its first checkpoint"):
        folder = RunFolder(tmp_path).acquire()
    try:
        assert folder.run_files() == [] and not (tmp_path / "curves.png").exists()
    finally:
        folder.release()


def test_a_folder_with_a_checkpoint_is_still_refused(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    (tmp_path / "best.pt").write_bytes(b"x")
    with pytest.raises(RunFolderError, match="already holds a run"):
        RunFolder(tmp_path).acquire()
    assert (tmp_path / "metrics.csv").exists()


def test_a_save_every_run_killed_before_saving_runs_again_from_the_cli(market, tmp_path, cli, util):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    status, err = cli(*util.train_argv(market, out, "--save-every", "3"))
    assert status == 0, err
    assert (out / "last.pt").exists()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_output_folder_is_a_one_line_error(market, cli, util, value):
    status, err = cli(*util.train_argv(market, value))
    assert status == 2
    assert "non-empty path" in util.one_line(err)
    with pytest.raises(ValueError, match="out_dir must be a non-empty path"):
        TrainConfig(out_dir=value)
