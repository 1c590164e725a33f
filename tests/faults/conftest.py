"""Shared pieces of the fault suite: a tiny synthetic Market set, a CLI runner that returns the exit status and
stderr, a tiny trained run, and a writer of hand-made checkpoint archives (a chosen ``data.pkl``)."""

import io
import os
import subprocess
import sys
import zipfile

import pytest
import torch

from ptl_ext.cli import main
from ptl_ext.data import make_synthetic_market

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def market(tmp_path_factory):
    """A 64x32 synthetic Market-1501 folder: 6 training ids, 4 test ids, 2 cameras."""
    root = tmp_path_factory.mktemp("faults") / "market"
    make_synthetic_market(
        root,
        num_train_ids=6,
        num_test_ids=4,
        num_cams=2,
        images_per_cam=2,
        num_distractors=2,
        num_junk=1,
        height=64,
        width=32,
        seed=0,
    )
    return root


def train_argv(root, out, *extra):
    """``ptl train`` arguments of a one-epoch DenseNet-BC-100 run on the tiny set (``extra`` appended)."""
    return [
        "train",
        "--dataset",
        "market1501",
        "--root",
        str(root),
        "--arch",
        "densenet_bc100",
        "--height",
        "64",
        "--width",
        "32",
        "--p",
        "4",
        "--k",
        "2",
        "--epochs",
        "1",
        "--no-progress",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture
def cli(capsys):
    """``cli(*argv) -> (status, stderr)`` of ``ptl``; asserts that stderr holds no traceback."""

    def run(*argv):
        status = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        return status, err

    return run


def one_line(err):
    """The single ``ptl: error:`` line of ``err`` (asserted to be the only line)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ptl: error: "), err
    return lines[0]


@pytest.fixture(scope="session")
def trained(market, tmp_path_factory):
    """A run folder of a two-epoch run on the tiny set (``last.pt``, ``best.pt``, ``metrics.csv``)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_argv(market, out, "--epochs", "2")) == 0
    return out


def write_archive(path, pickle_bytes, records=None):
    """A torch zip archive at ``path`` whose ``data.pkl`` is ``pickle_bytes`` (storages from ``records``)."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            if info.filename.endswith("data.pkl"):
                out.writestr(info, pickle_bytes)
            elif "/data/" not in info.filename:
                out.writestr(info, src.read(info.filename))
        for name, data in (records or {}).items():
            out.writestr(f"archive/data/{name}", data)
    return path


def run_python(code, timeout=120, env=None):
    """Run ``code`` in a fresh interpreter (repository on the path); returns the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1", **(env or {})},
    )


@pytest.fixture(scope="session")
def util():
    """The helpers above as attributes: ``util.train_argv``, ``util.one_line``, ``util.write_archive``, ..."""
    import types

    return types.SimpleNamespace(
        train_argv=train_argv, one_line=one_line, write_archive=write_archive, run_python=run_python, REPO=REPO
    )
