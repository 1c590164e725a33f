"""The build decisions (ptl_ext/_build_config.py): when CUDA is built and for which architectures."""

import os
import re
import shutil
import struct
import subprocess
import sys

import pytest
import torch

from ptl_ext import _build_config as bc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NVCC_13_LIST = "sm_75\nsm_80\nsm_86\nsm_87\nsm_88\nsm_89\nsm_90\nsm_100\nsm_110\nsm_103\nsm_120\nsm_121\n"


def test_cuda_is_built_with_a_cuda_torch_and_nvcc_even_without_a_visible_gpu():
    assert bc.want_cuda({}, "12.8", True)[0]
    assert not bc.want_cuda({}, None, True)[0]
    assert not bc.want_cuda({}, "12.8", False)[0]
    decision, reason = bc.want_cuda({"PTL_EXT_SKIP_CUDA": "1"}, "12.8", True)
    assert not decision and "PTL_EXT_SKIP_CUDA" in reason


def test_forced_cuda_build_fails_loudly_when_it_cannot_build():
    assert bc.want_cuda({"PTL_EXT_FORCE_CUDA": "yes"}, "12.8", True)[0]
    with pytest.raises(RuntimeError, match="CPU-only build"):
        bc.want_cuda({"PTL_EXT_FORCE_CUDA": "1"}, None, True)
    with pytest.raises(RuntimeError, match="nvcc was not found"):
        bc.want_cuda({"PTL_EXT_FORCE_CUDA": "1"}, "12.8", False)
    assert not bc.want_cuda({"PTL_EXT_FORCE_CUDA": "1", "PTL_EXT_SKIP_CUDA": "1"}, None, False)[0]


@pytest.mark.parametrize(
    "text, arch",
    [
        ("8.6", "86"),
        ("86", "86"),
        ("sm_86", "86"),
        ("compute_86", "86"),
        ("7.5", "75"),
        ("10.0", "100"),
        ("12.0", "120"),
        ("sm_90a", "90a"),
        ("9.0a", "90a"),
        (" SM_80 ", "80"),
    ],
)
def test_parse_arch(text, arch):
    assert bc.parse_arch(text) == arch


@pytest.mark.parametrize("text", ["8", "sm_8", "8.6.1", "ampere", "sm86", "compute_8.6x", ""])
def test_parse_arch_rejects_what_it_does_not_understand(text):
    with pytest.raises(ValueError, match="not understood"):
        bc.parse_arch(text)


def test_parse_arch_list_separators():
    assert bc.parse_arch_list("8.6;9.0, sm_75  compute_120") == ["86", "90", "75", "120"]
    assert bc.parse_arch_list("") == [] and bc.parse_arch_list(None) == []


def test_nvcc_and_torch_arch_lists():
    assert bc.nvcc_archs(NVCC_13_LIST) == ["75", "80", "86", "87", "88", "89", "90", "100", "103", "110", "120", "121"]
    assert bc.nvcc_archs("") == []
    assert bc.torch_archs(["sm_50", "sm_60", "sm_90", "compute_90"]) == ["50", "60", "90"]
    assert bc.torch_archs("sm_75 sm_80 sm_86 sm_90 sm_100 sm_120") == ["75", "80", "86", "90", "100", "120"]


def test_default_archs_are_torch_archs_nvcc_knows():
    torch_list = bc.torch_archs("sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90 sm_100 sm_120")
    chosen = bc.default_archs(torch_list, bc.nvcc_archs(NVCC_13_LIST))
    assert chosen == ["75", "80", "86", "90", "100", "120"]  # sm_50..70 are gone from nvcc 13
    assert bc.default_archs([], bc.nvcc_archs(NVCC_13_LIST)) == list(bc.FALLBACK_ARCHS)
    assert bc.default_archs(["80"], bc.nvcc_archs(NVCC_13_LIST), extra=["89", "80"]) == ["80", "89"]
    with pytest.raises(ValueError, match="nvcc cannot generate code for sm_61"):
        bc.default_archs(["80"], bc.nvcc_archs(NVCC_13_LIST), extra=["61"])
    with pytest.raises(ValueError, match="TORCH_CUDA_ARCH_LIST"):
        bc.default_archs(["50", "60"], bc.nvcc_archs(NVCC_13_LIST))


def test_gencode_flags_give_machine_code_for_each_and_ptx_for_the_newest():
    assert bc.gencode_flags(["75", "86"]) == [
        "-gencode",
        "arch=compute_75,code=sm_75",
        "-gencode",
        "arch=compute_86,code=sm_86",
        "-gencode",
        "arch=compute_86,code=compute_86",
    ]
    assert bc.cmake_architectures(["75", "86", "90"]) == "75-real;86-real;90"
    assert bc.cmake_architectures(["90"]) == "90"


def test_arch_flags_honour_torch_cuda_arch_list_and_the_extra_list():
    nvcc = bc.nvcc_archs(NVCC_13_LIST)
    assert bc.arch_flags({"TORCH_CUDA_ARCH_LIST": "7.5;8.6+PTX"}, ["80", "90"], nvcc) == []
    flags = bc.arch_flags({"PTL_EXT_CUDA_ARCH": "8.6"}, ["80", "90"], nvcc)
    assert "arch=compute_86,code=sm_86" in flags and not any("8.6" in f for f in flags)
    assert flags[-1] == "arch=compute_90,code=compute_90"


@pytest.mark.skipif(not os.path.exists("/usr/local/cuda/bin/nvcc"), reason="needs nvcc at /usr/local/cuda")
def test_setup_builds_cuda_for_a_cuda_torch_without_a_gpu():
    """setup.py under a CUDA torch with no visible GPU (torch.version.cuda faked on this CPU torch):
    the extension gets the .cu sources, accurate math (no --use_fast_math) and explicit -gencode flags."""
    code = """
import sys, setuptools, torch
import torch.utils.cpp_extension as ce
torch.version.cuda = "12.8"
torch.cuda.is_available = lambda: False
ce.CUDA_HOME = "/usr/local/cuda"
captured = {}
setuptools.setup = lambda **kw: captured.update(kw)
sys.argv = ["setup.py", "build_ext"]
exec(compile(open("setup.py").read(), "setup.py", "exec"), {"__name__": "__main__", "__file__": "setup.py"})
ext = captured["ext_modules"][0]
print(sum(s.endswith(".cu") for s in ext.sources), " ".join(ext.extra_compile_args["nvcc"]))
"""
    skip = ("TORCH_CUDA_ARCH_LIST", "PTL_EXT_SKIP_CUDA", "PTL_EXT_CUDA_ARCH")
    env = {k: v for k, v in os.environ.items() if k not in skip}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    count, flags = out.stdout.strip().splitlines()[-1].split(" ", 1)
    assert int(count) >= 2
    assert "--use_fast_math" not in flags
    # the default list: what torch ships kernels for (a CPU torch names none: the fallback, Turing to
    # Hopper) that this nvcc compiles, machine code for each and PTX for the newest
    shipped = bc.torch_archs(torch._C._cuda_getArchFlags() or "") if hasattr(torch._C, "_cuda_getArchFlags") else []
    nvcc = bc.nvcc_archs(bc.run_nvcc_list("/usr/local/cuda/bin/nvcc"))
    want = [a for a in (shipped or bc.FALLBACK_ARCHS) if a.isdigit() and a in nvcc]
    if not shipped:
        assert "arch=compute_80,code=sm_80" in flags and "arch=compute_90,code=compute_90" in flags
    assert flags.split("-gencode")[1:] == [f" arch=compute_{a},code=sm_{a} " for a in want] + [
        f" arch=compute_{want[-1]},code=compute_{want[-1]}"
    ]
    assert "building the CUDA kernels" in out.stderr


def test_cmake_architectures_script():
    nvcc = "/usr/local/cuda/bin/nvcc"
    if not os.path.exists(nvcc):
        pytest.skip("needs nvcc at /usr/local/cuda")
    out = subprocess.run(
        [sys.executable, "ptl_ext/_build_config.py", "--cmake-architectures", nvcc],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PTL_EXT_CUDA_ARCH": "sm_120"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "75-real;80-real;86-real;89-real;90-real;120"


def _fake_elf(needed, big_endian=False):
    """A minimal ELF64 shared library: a string table and a dynamic section naming ``needed``."""
    o = ">" if big_endian else "<"
    strtab = b"\0" + b"".join(name.encode() + b"\0" for name in needed)
    offsets = [1 + sum(len(n) + 1 for n in needed[:i]) for i in range(len(needed))]
    dynamic = b"".join(struct.pack(o + "qQ", 1, off) for off in offsets) + struct.pack(o + "qQ", 14, 1)
    dynamic += struct.pack(o + "qQ", 0, 0)  # DT_SONAME (ignored), then DT_NULL
    body = strtab + dynamic
    shoff = 64 + len(body)
    ident = b"\x7fELF" + bytes([2, 2 if big_endian else 1, 1]) + bytes(9)
    header = ident + struct.pack(o + "HHIQQQIHHHHHH", 3, 62, 1, 0, 0, shoff, 0, 64, 56, 0, 64, 3, 1)
    shdr = struct.pack(o + "IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    shdr += struct.pack(o + "IIQQQQIIQQ", 0, 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)  # SHT_STRTAB
    shdr += struct.pack(o + "IIQQQQIIQQ", 0, 6, 0, 0, 64 + len(strtab), len(dynamic), 1, 0, 8, 16)  # SHT_DYNAMIC
    return header + body + shdr


@pytest.mark.parametrize("big_endian", [False, True])
def test_elf_needed_reads_the_dynamic_section(big_endian):
    names = ["libc10.so", "libstdc++.so.6", "libgcc_s.so.1"]
    assert bc.elf_needed(_fake_elf(names, big_endian)) == names
    assert bc.elf_needed(b"\xcf\xfa\xed\xfe" + bytes(60)) is None  # a Mach-O library: not checked
    assert bc.elf_needed(_fake_elf(names)[:80]) is None  # cut short


def test_a_library_without_dynamic_libstdcxx_is_named_with_the_fix(tmp_path):
    """The failure of a compiler wrapper that links libstdc++ statically: one line naming the fix."""
    good, bad = tmp_path / "_C.good.so", tmp_path / "_C.bad.so"
    good.write_bytes(_fake_elf(["libtorch_cpu.so", "libstdc++.so.6", "libgcc_s.so.1"]))
    bad.write_bytes(_fake_elf(["libtorch_cpu.so", "libgcc_s.so.1"]))
    assert bc.cxx_runtime_problem(str(good)) is None
    problem = bc.cxx_runtime_problem(str(bad))
    assert "_C.bad.so does not link libstdc++ dynamically (it needs only libtorch_cpu.so, libgcc_s.so.1)" in problem
    assert problem.endswith("CXX=/usr/bin/g++ CC=/usr/bin/gcc") and "\n" not in problem


def test_the_built_extension_links_libstdcxx_as_readelf_says():
    from ptl_ext import ops

    if not ops.HAS_C or not sys.platform.startswith("linux"):
        pytest.skip("needs the compiled extension on Linux")
    library = sys.modules["ptl_ext._C"].__file__
    with open(library, "rb") as fh:
        needed = bc.elf_needed(fh.read())
    assert bc.cxx_runtime_problem(library) is None and "libstdc++.so.6" in needed
    if shutil.which("readelf"):
        out = subprocess.run(["readelf", "-d", library], capture_output=True, text=True, check=True).stdout
        assert needed == re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
