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
    """Run gpu_check.sh with an nvidia-smi that lists ``gpu_listing`` (None: no nvidia-smi at all)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu_listing is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{gpu_listing}'\n")
        fake.chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
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
    assert out.returncode == 64 and "usage: scripts/gpu_check.sh OUT_DIR" in out.stderr
    out = _run(tmp_path, [str(tmp_path / "out")], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="8min")
    assert out.returncode == 64 and "GPU_CHECK_DEADLINE must be a whole number of seconds" in out.stderr


def test_spent_deadline_still_reports_every_step(tmp_path):
    """With no time left nothing runs, yet every step is recorded and the summary says the check failed."""
    out_dir = tmp_path / "out"
    out = _run(tmp_path, [str(out_dir)], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="0")
    assert out.returncode == 1, out.stdout + out.stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    names = [s["name"] for s in summary["steps"]]
    assert names == ["env", "build", "tests", "rerank", "cell", "model", "sanitizer"]
    assert [s["status"] for s in summary["steps"][:2]] == ["deadline", "deadline"]
    assert {s["status"] for s in summary["steps"][2:]} == {"not-run"}
    assert not summary["ok"] and summary["failed"] == names
    assert "Overall: not passed" in (out_dir / "summary.md").read_text()
    assert sorted(p.name for p in (out_dir / "steps").iterdir())[0] == "01-env.json"


def test_summary_tables_from_step_results(tmp_path):
    steps = tmp_path / "steps"
    steps.mkdir()
    for i, (name, status) in enumerate(
        [("env", "pass"), ("build", "pass"), ("tests", "fail"), ("sanitizer", "skipped")]
    ):
        (steps / f"{i + 1:02d}-{name}.json").write_text(json.dumps({"name": name, "status": status, "seconds": 3}))
    gpu_validate._write_json(
        tmp_path / "env.json",
        {
            "torch": "2.13.0",
            "torch_cuda": "12.8",
            "cudnn": 91000,
            "devices": [{"name": "H200", "capability": "9.0", "memory_gib": 139.8}],
        },
    )
    gpu_validate._write_json(
        tmp_path / "rerank.json",
        {"scale": "3368 x 15913, d = 2048", "cuda_s": 0.41, "cuda_peak_gib": 1.2, "cpu_s": 3.1, "max_abs_diff": 2e-7},
    )
    gpu_validate._write_json(
        tmp_path / "cell.json",
        {
            "rows": [
                {
                    "dtype": "float32",
                    "size": [32, 64, 64, 32],
                    "fused_ms": 0.05,
                    "fused_gbps": 3000.0,
                    "pct_of_copy": 91.0,
                    "x_compiled": 1.4,
                    "x_eager": 6.0,
                    "fused_fwd_bwd_ms": 0.14,
                    "compiled_fwd_bwd_ms": 0.2,
                }
            ]
        },
    )
    gpu_validate._write_json(
        tmp_path / "model.json",
        {
            "batch": 32,
            "input": "256 x 128",
            "amp": "bfloat16",
            "ptl_over_resnet50": 1.3,
            "nets": {
                "resnet50": {"step_ms": 50.0, "peak_gib": 5.0},
                "ptl_resnet50": {"step_ms": 65.0, "peak_gib": 6.5},
            },
        },
    )
    summary = gpu_validate.summarize(str(tmp_path))
    assert summary["failed"] == ["tests"] and not summary["ok"]
    md = (tmp_path / "summary.md").read_text()
    assert "H200 (sm 9.0, 139.8 GiB)" in md
    assert "| tests | fail | 3 |" in md and "| sanitizer | skipped | 3 |" in md
    assert "CUDA 0.41 s" in md and "max |CUDA - CPU| 2e-07" in md
    assert "| float32 | 32, 64, 64, 32 | 0.0500 | 3000.0 | 91.0 | 1.4 | 6.0 |" in md
    assert "| ptl_resnet50 | 65.0 | 6.5 |" in md and "PTL-ResNet50 / ResNet-50 step time: 1.3" in md
    assert json.loads((tmp_path / "summary.json").read_text())["results"]["model"]["ptl_over_resnet50"] == 1.3


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a real GPU this would run the whole check")
def test_failed_build_stops_the_gpu_steps(tmp_path):
    """A stand-in GPU on a CPU torch: the environment step fails (torch sees no device), the forced
    build refuses (no CUDA torch) before compiling anything, and the later steps are marked not run."""
    out_dir = tmp_path / "out"
    out = _run(tmp_path, [str(out_dir)], "GPU 0: Stand-in (UUID: GPU-0)", GPU_CHECK_DEADLINE="120")
    assert out.returncode == 1, out.stdout + out.stderr
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [s["status"] for s in summary["steps"]] == ["fail", "fail"] + ["not-run"] * 5
    assert "PTL_EXT_FORCE_CUDA=1 but CUDA cannot be built" in (out_dir / "steps" / "02-build.log").read_text()
    assert "torch sees no CUDA device" in (out_dir / "steps" / "01-env.log").read_text()
