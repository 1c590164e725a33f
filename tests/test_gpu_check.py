"""scripts/gpu_check.sh without a GPU: the refusal, the argument checks, the deadline bookkeeping and
the summary (scripts/gpu_validate.py), with a stand-in nvidia-smi where a GPU must seem present."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu_check.sh")

_spec = importlib.util.spec_from_file_location("gpu_validate", os.path.join(ROOT, "scripts", "gpu_validate.py"))
gpu_validate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_validate)


def _run(tmp_path, args, gpu_listing, **env):
    """Run gpu_check.sh with an nvidia-smi that lists ``gpu_listing`` (None: no nvidia-smi at all).

    The PATH is one folder of links to the commands of /usr/bin and /bin, the real nvidia-smi left out,
    so that on a machine with a GPU (and its nvidia-smi in /usr/bin) the script still sees none."""
    bin_dir = tmp_path / "bin"
    if not bin_dir.exists():
        bin_dir.mkdir()
        for folder in ("/bin", "/usr/bin"):
            for name in os.listdir(folder):
                link = bin_dir / name
                if name != "nvidia-smi" and not link.exists() and not link.is_symlink():
                    link.symlink_to(os.path.join(folder, name))
    fake = bin_dir / "nvidia-smi"
    if gpu_listing is not None:
        fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{gpu_listing}'\n")
        fake.chmod(0o755)
    elif fake.exists():
        fake.unlink()
    path = str(bin_dir)
    full_env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp"), "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=full_env, timeout=120)


def test_script_parses():
    assert subprocess.run(["bash", "-n", SCRIPT]).returncode == 0


@pytest.mark.parametrize("listing", [None, "No devices were found"])
def test_exits_at_once_without_a_gpu(tmp_path, listing):
    out = _run(tmp_path, [str(tmp_path / "out")], listing)
    assert out.returncode == 2
    assert "no NVIDIA GPU is visible" in out.stderr
    assert not (tmp_path / "out").exists()


def test_argument_errors(tmp_path):
    out = _run(tmp_path, [], None)
    assert out.returncode == 64 and "usage: scripts/gpu_check.sh [--cpu-smoke] OUT_DIR" in out.stderr
    out = _run(tmp_path, [str(tmp_path / "out")], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="8min")
    assert out.returncode == 64 and "GPU_CHECK_DEADLINE must be a whole number, got '8min'" in out.stderr
    out = _run(tmp_path, ["--cpu-smoke", str(tmp_path / "out")], None, TEST_WORKERS="-1")
    assert out.returncode == 64 and "TEST_WORKERS must be a whole number" in out.stderr


def test_spent_deadline_still_reports_every_step(tmp_path):
    """With no time left nothing runs, yet every step is recorded and the summary says the check failed."""
    out_dir = tmp_path / "out"
    out = _run(tmp_path, [str(out_dir)], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="0")
    assert out.returncode == 1, out.stdout + out.stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    names = [s["name"] for s in summary["steps"]]
    assert names == ["env", "build", "rerank", "cell", "models", "tests", "memcheck", "racecheck"]
    assert [s["status"] for s in summary["steps"][:2]] == ["deadline", "deadline"]
    assert {s["status"] for s in summary["steps"][2:]} == {"not-run"}
    assert not summary["ok"] and summary["failed"] == names
    assert "- steps: not passed: env, build" in (out_dir / "summary.md").read_text()
    assert sorted(p.name for p in (out_dir / "steps").iterdir())[0] == "01-env.json"


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.test_a" name="test_ok" time="0.1"/>
<testcase classname="tests.test_a" name="test_bad" time="0.1">
  <failure message="AssertionError: 1 != 2">trace</failure></testcase>
<testcase classname="tests.test_b" name="test_late" time="0">
  <skipped type="pytest.skip" message="deadline: gone"/></testcase>
<testcase classname="tests.test_b" name="test_gpu" time="0">
  <skipped type="pytest.skip" message="needs a CUDA device"/></testcase>
</testsuite></testsuites>
"""


def test_summary_tables_from_step_results(tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    for i, (name, status) in enumerate(
        [("env", "pass"), ("build", "pass"), ("tests", "fail"), ("racecheck", "skipped")]
    ):
        (steps / f"{i + 1:02d}-{name}.json").write_text(json.dumps({"name": name, "status": status, "seconds": 3}))
    (tmp_path / "junit.xml").write_text(JUNIT)
    gpu_validate._write_json(
        tmp_path / "env.json",
        {
            "torch": "2.13.0",
            "torch_cuda": "12.8",
            "cudnn": 91000,
            "cpus": 16,
            "devices": [{"name": "H200", "capability": "9.0", "memory_gib": 139.8, "multiprocessors": 132}],
        },
    )
    gpu_validate._write_json(
        tmp_path / "rerank.json",
        {
            "device": "cuda",
            "search": "float32",
            "rows": [
                {
                    "name": "Market-1501",
                    "scale": "3,368 x 15,913, d = 2048",
                    "seconds": 0.084,
                    "peak_gib_above_features": 0.69,
                    "cpu_seconds": 9.5,
                    "max_abs_diff_vs_cpu": 2.4e-7,
                },
                {
                    "name": "MSMT17",
                    "scale": "11,659 x 82,161, d = 2048",
                    "seconds": 1.61,
                    "peak_gib_above_features": 4.68,
                },
            ],
        },
    )
    row = {
        "dtype": "float32",
        "size": [32, 64, 64, 32],
        "fused_ms": 0.05,
        "fused_gbps": 3000.0,
        "pct_of_copy": 91.0,
        "x_compiled": 1.4,
        "x_eager": 6.0,
        "fused_fwd_bwd_ms": 0.14,
        "compiled_fwd_bwd_ms": 0.3,
        "fwd_bwd_x_compiled": 2.14,
    }
    gpu_validate._write_json(tmp_path / "cell.json", {"rows": [row, {**row, "dtype": "bfloat16", "pct_of_copy": 86.5}]})
    gpu_validate._write_json(
        tmp_path / "models.json",
        {
            "batch": 32,
            "amp": "bfloat16",
            "nets": {
                "resnet50": {
                    "input": [256, 128],
                    "step_ms": 50.0,
                    "forward_ms": 15.0,
                    "peak_gib": 5.0,
                    "params": 25557032,
                },
                "densenet_bc100": {
                    "input": [32, 32],
                    "step_ms": 20.0,
                    "busy_ms": 8.5,
                    "forward_ms": 6.0,
                    "peak_gib": 1.0,
                    "params": 946478,
                },
            },
        },
    )
    gpu_validate._write_json(tmp_path / "build.json", {"cxx": "/usr/bin/g++", "ok": True})
    summary = gpu_validate.summarize(str(tmp_path))
    assert summary["failed"] == ["tests"] and not summary["ok"]
    assert summary["tests"]["passed"] == 1 and summary["tests"]["deadline_skipped"] == 1
    assert summary["failed_tests"] == ["tests.test_a::test_bad"]
    md = (tmp_path / "summary.md").read_text()
    assert "H200 (sm 9.0, 139.8 GiB, 132 SMs)" in md
    assert "| tests | fail | 3 |" in md and "| racecheck | skipped | 3 |" in md
    assert "Tests: 1 passed, 1 failed, 0 errors, 2 skipped (1 at the deadline) of 4" in md
    assert "- FAILED tests.test_a::test_bad: AssertionError: 1 != 2" in md
    assert "## Re-ranking (k1 20, k2 6, λ 0.3; default search on cuda: float32)" in md
    assert "| Market-1501 | 3,368 x 15,913, d = 2048 | 0.084 | 0.69 | 9.5 | 2.4e-07 |" in md
    assert "| MSMT17 | 11,659 x 82,161, d = 2048 | 1.61 | 4.68 | - | - |" in md
    assert "| float32 | 32, 64, 64, 32 | 0.0500 | 3000.0 | 91.0 | 1.4 | 6.0 | 0.1400 | 0.3000 | 2.14 |" in md
    assert "| densenet_bc100 | 32x32 | 20.0 | 8.5 | 6.0 | 1.0 | 946,478 |" in md
    tail = md.split("## Summary")[1]
    assert "- tests: 3 of 4 reached, 1 failed" in tail and "- models: 2 networks timed" in tail
    assert "- build: C++ compiler /usr/bin/g++\n" in tail
    assert "lowest 86.5 % of copy (bfloat16" in tail and "Market-1501 0.084 s; MSMT17 1.61 s" in tail
    assert "tests.test_a::test_bad" in (tmp_path / "failures.md").read_text()


def test_junit_counts_of_a_missing_or_broken_file(tmp_path):
    assert gpu_validate.junit_counts(str(tmp_path / "none.xml")) is None
    (tmp_path / "cut.xml").write_text(JUNIT[:200])  # a run killed while writing
    assert gpu_validate.junit_counts(str(tmp_path / "cut.xml")) is None


def test_test_deadline_skips_what_starts_late(tmp_path):
    """tests/conftest.py: past PTL_EXT_TEST_DEADLINE every test is skipped with a ``deadline:`` reason."""
    junit = tmp_path / "j.xml"
    env = {**os.environ, "PTL_EXT_TEST_DEADLINE": "1"}  # long gone
    args = [sys.executable, "-m", "pytest", "tests/test_info.py", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    counts = gpu_validate.junit_counts(str(junit))
    assert counts["tests"] > 0 and counts["deadline_skipped"] == counts["tests"]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine runs the real gpu_check.sh instead")
def test_cpu_smoke_runs_every_step(tmp_path):
    """``gpu_check.sh --cpu-smoke``: every step's code at small size on the CPU, exit status 0, every
    result file and table written."""
    out_dir = tmp_path / "out"
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "PYTHON": sys.executable}
    env["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    out = subprocess.run(
        ["bash", SCRIPT, "--cpu-smoke", str(out_dir)], capture_output=True, text=True, env=env, timeout=900
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    statuses = {s["name"]: s["status"] for s in summary["steps"]}
    assert statuses == {
        "env": "pass",
        "build": "pass",
        "rerank": "pass",
        "cell": "pass",
        "models": "pass",
        "tests": "pass",
        "memcheck": "pass",
        "racecheck": "pass",
    }
    assert sorted(summary["results"]["models"]["nets"]) == sorted(gpu_validate.SMOKE_MODELS)
    assert len(summary["results"]["cell"]["rows"]) == 4 and summary["results"]["rerank"]["rows"][0]["match_1e-5"]
    assert summary["tests"]["passed"] > 0 and summary["tests"]["failed"] == 0
    assert "## Summary" in (out_dir / "summary.md").read_text()
    for tool in ("memcheck", "racecheck"):
        assert "sanitize cases ran on cpu" in next((out_dir / "steps").glob(f"*-{tool}.log")).read_text()
    # the extension as built: a C++ error of the op arrives as ValueError (a library that cannot raise crashes)
    assert "C++ errors reach Python: bconv_cell_update" in (out_dir / "steps" / "02-build.log").read_text()


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a real GPU this would run the whole check")
def test_failed_build_stops_the_gpu_steps(tmp_path):
    """A stand-in GPU on a CPU torch: the environment step fails (torch sees no device), the forced
    build refuses (no CUDA torch) before compiling anything, and the later steps are marked not run."""
    out_dir = tmp_path / "out"
    out = _run(tmp_path, [str(out_dir)], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="120")
    assert out.returncode == 1, out.stdout + out.stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["fail", "fail"] + ["not-run"] * 6
    assert "PTL_EXT_FORCE_CUDA=1 but CUDA cannot be built" in (out_dir / "steps" / "02-build.log").read_text()
    assert "torch sees no CUDA device" in (out_dir / "steps" / "01-env.log").read_text()
    assert json.loads((out_dir / "build.json").read_text()) == {"cxx": "default", "ok": False}  # no rebuild


FAKE_PYTHON = """#!/bin/bash
# setup.py and the checks of gpu_check.sh's build step, as on a machine whose CXX links libstdc++ statically
case "$1" in
    setup.py)
        echo "${CXX:-unset}" > "$BUILT_WITH"
        if [ "$MODE" = refused ] && [ "${CXX:-}" != /usr/bin/g++ ]; then
            echo "ptl-ext: _C.so does not link libstdc++ dynamically (it needs only libgcc_s.so.1)" >&2
            exit 1
        fi;;
    -c)
        case "$2" in
            *get_device_capability*) echo 9.0;;
            *bconv_cell_update*)
                [ "$(cat "$BUILT_WITH")" = /usr/bin/g++ ] || kill -SEGV $$
                echo "C++ errors reach Python: bconv_cell_update: gates must be a 4-D tensor";;
        esac;;
esac
"""


@pytest.mark.parametrize("mode", ["refused", "crashes"])
def test_build_falls_back_to_the_system_compiler(tmp_path, mode):
    """The build step's functions with a stand-in python: a library setup.py refuses, or whose C++ error
    check crashes, is rebuilt once with /usr/bin/g++, and build.json names the compiler used."""
    if not os.access("/usr/bin/g++", os.X_OK):
        pytest.skip("needs /usr/bin/g++")
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    with open(SCRIPT) as fh:
        script = fh.read()
    functions = script[script.index("errors_reach_python() {") : script.index("\nsuite() {")]
    log = tmp_path / "02-build.log"
    env = {
        "PATH": os.environ["PATH"],
        "PY": str(fake),
        "OUT": str(tmp_path),
        "STEP_LOG": str(log),
        "BUILT_WITH": str(tmp_path / "built_with"),
        "MODE": mode,
        "CXX": "/opt/gcc/bin/g++",
    }
    out = subprocess.run(["bash", "-c", functions + '\nbuild > "$STEP_LOG" 2>&1'], env=env, timeout=60)
    text = log.read_text()
    assert out.returncode == 0, text
    assert "gpu_check: C++ compiler: /opt/gcc/bin/g++" in text
    assert "rebuilding with the system compiler /usr/bin/g++" in text
    if mode == "crashes":
        assert "C++ error check crashed (signal 11)" in text
    assert json.loads((tmp_path / "build.json").read_text()) == {"cxx": "/usr/bin/g++", "ok": True}
