"""The set-up scripts on a stock machine: a project-local .venv when no environment is active, the active
one otherwise, and no reinstall when nothing changed. Run in a temporary copy with a fake Python that logs
its calls instead of installing anything."""

import os
import shutil
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Logs every call. `-m venv DIR` makes DIR/bin/python (a copy of this script); `-m pip install ... -e .`
# marks the checkout installed; `-c CODE` answers the scripts' import checks; anything else only logs.
echo "$0 $*" >> "$FAKE_LOG"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    [ -n "${FAKE_VENV_FAILS:-}" ] && { echo "ensurepip is not available" >&2; exit 1; }
    dir="${@: -1}"; mkdir -p "$dir/bin"; cp "$0" "$dir/bin/python"; exit 0
fi
if [ "$1" = "-m" ] && [ "$2" = "pip" ]; then
    [[ " $* " == *" -e . "* ]] && touch "$FAKE_STATE/installed"
    exit 0
fi
if [ "$1" = "-c" ]; then
    case "$2" in
        *ptl_ext.ops*) [ -f "$FAKE_STATE/installed" ] || exit 1; echo "2.13.0 True $FAKE_ROOT/ptl_ext/__init__.py";;
        *"import torch"*) [ -n "${FAKE_HAS_TORCH:-}" ] || exit 1;;
    esac
fi
exit 0
"""


@pytest.fixture()
def project(tmp_path):
    """A copy of the scripts and build inputs, a fake python3 first on PATH and an environment with no
    virtual or conda environment active."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("scripts", "csrc"):
        shutil.copytree(os.path.join(ROOT, name), root / name)
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(os.path.join(ROOT, name), root / name)
    (root / "ptl_ext").mkdir()
    fake_bin, state = tmp_path / "bin", tmp_path / "state"
    fake_bin.mkdir()
    state.mkdir()
    (fake_bin / "python3").write_text(FAKE_PYTHON)
    (fake_bin / "python3").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHON")}
    env.update(
        PATH=f"{fake_bin}:/usr/bin:/bin",
        FAKE_LOG=str(tmp_path / "calls.log"),
        FAKE_STATE=str(state),
        FAKE_ROOT=str(root.resolve()),
    )
    return root, env, tmp_path / "calls.log"


def run(root, env, script="setup_env.sh", *args):
    started = time.perf_counter()
    out = subprocess.run(["bash", f"scripts/{script}", *args], cwd=root, env=env, capture_output=True, text=True)
    return out, time.perf_counter() - started


def calls(log):
    lines = log.read_text().splitlines() if log.exists() else []
    log.write_text("")
    return lines


def installs(lines):
    return [line for line in lines if " -m pip install" in line]


def test_no_active_environment_creates_and_uses_a_local_venv(project):
    root, env, log = project
    out, _ = run(root, env)
    assert out.returncode == 0, out.stderr
    assert "no virtual environment is active: creating the project-local .venv" in out.stdout
    lines = calls(log)
    assert lines[0].endswith("python3 -m venv --system-site-packages .venv")
    venv_python = str(root / ".venv" / "bin" / "python")
    assert all(line.startswith(venv_python) for line in lines[1:])
    pip = installs(lines)
    assert any("torch==2.13.0" in line for line in pip)  # no torch yet: the CPU wheel is installed
    assert pip[-1].endswith("install -q --no-build-isolation --no-deps -e .")
    assert len(list((root / "build").glob("setup-stamp.*"))) == 1


def test_a_second_set_up_with_nothing_changed_installs_nothing(project):
    root, env, log = project
    assert run(root, env)[0].returncode == 0
    calls(log)
    out, seconds = run(root, env)
    assert out.returncode == 0 and "up to date" in out.stdout and "creating" not in out.stdout
    lines = calls(log)
    assert installs(lines) == [] and not any(" -m venv" in line for line in lines)
    assert seconds < 10
    with open(root / "csrc" / "ops.cpp", "a") as fh:  # a source change: the install runs again
        fh.write("\n// changed\n")
    out, _ = run(root, env)
    assert out.returncode == 0 and installs(calls(log))[-1].endswith("-e .")
    (stamp,) = (root / "build").glob("setup-stamp.*")
    stamp.write_text(stamp.read_text().replace("2.13.0", "2.14.0"))  # e.g. torch was upgraded since
    run(root, env)
    assert installs(calls(log))


def test_an_active_virtual_or_conda_environment_is_used(project, tmp_path):
    root, env, log = project
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = tmp_path / variable.lower()
        (prefix / "bin").mkdir(parents=True)
        shutil.copy(tmp_path / "bin" / "python3", prefix / "bin" / "python")
        out, _ = run(root, {**env, variable: str(prefix), "FAKE_HAS_TORCH": "1"})
        assert out.returncode == 0, out.stderr
        assert f"environment {prefix}" in out.stdout
        lines = calls(log)
        assert lines and all(line.startswith(str(prefix / "bin" / "python")) for line in lines)
        assert not any("torch==" in line for line in lines)  # torch is there: kept
        assert not (root / ".venv").exists()


def test_test_and_demo_scripts_run_in_the_same_environment(project):
    root, env, log = project
    out, _ = run(root, env, "test.sh", "-q", "-k", "ops")
    assert out.returncode == 0, out.stderr
    assert calls(log)[-1] == f"{root / '.venv' / 'bin' / 'python'} -m pytest tests -q -k ops"
    out, _ = run(root, env, "demo.sh", "--epochs", "1")
    assert out.returncode == 0, out.stderr
    lines = calls(log)
    assert installs(lines) == [] and lines[-1] == f"{root / '.venv' / 'bin' / 'python'} -m ptl_ext demo --epochs 1"


def test_a_failing_venv_says_what_to_install(project):
    root, env, log = project
    out, _ = run(root, {**env, "FAKE_VENV_FAILS": "1"})
    assert out.returncode == 1 and "python3-venv" in out.stderr
    assert not (root / ".venv").exists() and installs(calls(log)) == []
