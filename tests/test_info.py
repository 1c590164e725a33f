"""``python -m ptl_ext.info``: versions, what was built, GPUs and whether the compiled ops loaded."""

import os
import shutil
import struct
import subprocess
import sys

import pytest
import torch

from ptl_ext import _build_config, ops
from ptl_ext import info as info_module
from ptl_ext.info import FATBIN_MAGIC, collect_info, fatbin_archs, format_info

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fatbin(entries):
    """A fat binary of ``(kind, arch, payload)`` entries, laid out as nvcc writes them."""
    body = b""
    for kind, arch, payload in entries:
        header = struct.pack("<HHIQIIHHI", kind, 0x101, 64, len(payload), 0, 0, 0, 8, arch).ljust(64, b"\0")
        body += header + payload
    return struct.pack("<IHHQ", FATBIN_MAGIC, 1, 16, len(body)) + body


def test_fatbin_targets_are_read():
    blob = b"junk" + fatbin([(2, 80, b"x" * 40), (1, 90, b"ptx"), (2, 90, b"y" * 8)]) + b"tail"
    assert fatbin_archs(blob) == ["sm_80", "compute_90", "sm_90"]
    two = fatbin([(2, 75, b"a")]) + fatbin([(2, 100, b"b"), (1, 100, b"c")])  # one per object file
    assert fatbin_archs(two) == ["sm_75", "compute_100", "sm_100"]
    assert fatbin_archs(b"no cuda here") == []
    assert fatbin_archs(struct.pack("<I", FATBIN_MAGIC) + b"\7" * 40) == []  # a stray magic number


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc")
def test_fatbin_targets_of_an_nvcc_object(tmp_path):
    source = tmp_path / "k.cu"
    source.write_text("__global__ void k(float* x) { x[threadIdx.x] *= 2.0f; }\n")
    gencode = ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=[sm_90,compute_90]"]
    subprocess.run(["nvcc", "-c", str(source), "-o", str(tmp_path / "k.o"), *gencode], check=True)
    assert fatbin_archs((tmp_path / "k.o").read_bytes()) == ["sm_80", "compute_90", "sm_90"]


def test_the_report_describes_this_installation():
    facts = collect_info()
    assert facts["torch"] == torch.__version__ and facts["compiled_ops_loaded"] == ops.HAS_C
    assert facts["cpu_kernel_isa"] == ops.cpu_kernel_isa()
    assert facts["cuda_available"] == torch.cuda.is_available() and len(facts["gpus"]) == (
        torch.cuda.device_count() if torch.cuda.is_available() else 0
    )
    if ops.HAS_C and not facts["cuda_kernels"]:
        assert facts["build"] == "CPU-only build" and facts["cuda_archs"] == []
        with open(facts["library"], "rb") as fh:
            assert fatbin_archs(fh.read()) == []
    text = format_info(facts)
    for label in ("python", "torch", "faiss", "build", "CPU kernels", "compiled ops", "GPU"):
        assert f"\n{label} " in f"\n{text}"
    assert facts["build"] in text


def test_missing_compiled_ops_are_reported(monkeypatch):
    monkeypatch.setattr(ops, "HAS_C", False)
    monkeypatch.setattr(ops, "C_IMPORT_ERROR", ImportError("libfoo.so: cannot open shared object file"))
    facts = collect_info()
    assert facts["library"] is None and facts["cpu_kernel_isa"] == "reference"
    assert facts["build"].startswith("not built")
    assert "NOT loaded: libfoo.so: cannot open shared object file" in format_info(facts)


def test_a_library_whose_cpp_errors_would_crash_is_flagged(monkeypatch):
    """``ptl info`` on a build whose library does not link libstdc++ dynamically (the ELF reading itself
    is tested in tests/test_build_config.py): one line with the rebuild advice."""
    if not ops.HAS_C:
        pytest.skip("needs the compiled extension")
    assert collect_info()["cxx_runtime_problem"] is None  # this build links it
    assert "\nC++ errors       raised as Python exceptions" in format_info(collect_info())
    problem = "_C.so does not link libstdc++ dynamically (...): rebuild with ... CXX=/usr/bin/g++ CC=/usr/bin/gcc"
    monkeypatch.setattr(_build_config, "cxx_runtime_problem", lambda path: problem)
    facts = collect_info()
    assert facts["cxx_runtime_problem"] == problem
    assert f"\nC++ errors       WILL CRASH Python: {problem}\n" in format_info(facts)


def test_a_gpu_is_listed(monkeypatch):
    class Props:
        name, major, minor, total_memory = "NVIDIA H200", 9, 0, 143 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props)
    gpus = info_module._gpus(torch)
    assert gpus == [{"index": 0, "name": "NVIDIA H200", "capability": "9.0", "memory_gib": 143.0}]


def test_module_runs_as_a_script():
    out = subprocess.run([sys.executable, "-m", "ptl_ext.info"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ptl-ext ") and f"torch            {torch.__version__}" in out.stdout
