"""Build decisions of ``setup.py``, as pure functions of the environment (no torch import here).

``setup.py`` loads this file by path (the package itself needs the compiled extension), and
``scripts/build_cuda_kernels.sh`` runs it as a script for the CMake architecture list, so the build
and the CI compile check choose the same GPU architectures. The functions take what they decide on
as arguments, so they are tested without a GPU, nvcc or a CUDA build of torch.

Switches (environment variables):
    PTL_EXT_SKIP_CUDA=1     never build the CUDA kernels.
    PTL_EXT_FORCE_CUDA=1    fail, instead of building CPU-only, when CUDA cannot be built.
    TORCH_CUDA_ARCH_LIST    the GPU architectures, in torch's own syntax ("8.0;8.6+PTX", "Ampere", ...);
                            handed to torch unchanged.
    PTL_EXT_CUDA_ARCH       extra architectures added to the default list ("8.6", "86", "sm_86" or
                            "compute_86"; several separated by spaces, commas or semicolons).
"""

import os
import re
import struct
import subprocess
import sys

# Used when the installed torch does not say which architectures it was built for (a CPU wheel, as
# in the CMake compile check): Turing (T4) to Hopper.
FALLBACK_ARCHS = ("75", "80", "86", "89", "90")

_TRUE = ("1", "true", "yes", "on")


def flag(env, name):
    """True when the environment variable ``name`` of the mapping ``env`` is set to 1/true/yes/on."""
    return env.get(name, "0").strip().lower() in _TRUE


def want_cuda(env, torch_cuda_version, nvcc_found):
    """Whether to build the CUDA kernels: ``(decision, reason)``.

    CUDA is built whenever torch is a CUDA build (``torch_cuda_version`` is not None) and nvcc is found,
    whether or not a GPU is visible now (a Docker build, a login node, a CI runner), unless
    ``PTL_EXT_SKIP_CUDA`` is set. With ``PTL_EXT_FORCE_CUDA`` set, a missing prerequisite raises
    ``RuntimeError`` rather than giving a CPU-only build.
    """
    if flag(env, "PTL_EXT_SKIP_CUDA"):
        return False, "PTL_EXT_SKIP_CUDA is set"
    missing = []
    if torch_cuda_version is None:
        missing.append("the installed torch is a CPU-only build")
    if not nvcc_found:
        missing.append("nvcc was not found (set CUDA_HOME or put nvcc on PATH)")
    if missing:
        if flag(env, "PTL_EXT_FORCE_CUDA"):
            raise RuntimeError("PTL_EXT_FORCE_CUDA=1 but CUDA cannot be built: " + "; ".join(missing))
        return False, "; ".join(missing)
    return True, f"torch built with CUDA {torch_cuda_version} and nvcc found"


_ARCH = re.compile(r"^(?:sm_|compute_)?(\d+)(?:\.(\d))?([af]?)$")


def parse_arch(text):
    """One architecture as nvcc's digits: ``"8.6"``, ``"86"``, ``"sm_86"``, ``"compute_86"`` -> ``"86"``;
    ``"9.0a"``/``"sm_90a"`` -> ``"90a"``, ``"10.0"`` -> ``"100"``. Raises ``ValueError`` otherwise."""
    m = _ARCH.match(text.strip().lower())
    if m is None:
        raise ValueError(
            f"CUDA architecture {text!r} is not understood: expected a compute capability such as "
            "'8.6', '86', 'sm_86' or 'compute_86'"
        )
    major, minor, suffix = m.groups()
    if minor is None and len(major) < 2:
        raise ValueError(f"CUDA architecture {text!r} is not understood: '{major}' lacks the minor version")
    return (major + minor if minor is not None else major) + suffix


def parse_arch_list(text):
    """Architectures of a list separated by spaces, commas or semicolons, parsed by :func:`parse_arch`."""
    return [parse_arch(t) for t in re.split(r"[\s,;]+", text or "") if t]


def _arch_key(arch):
    digits = re.match(r"\d+", arch).group(0)
    return int(digits), arch


def nvcc_archs(list_gpu_code_output):
    """Real architectures nvcc can generate code for, from ``nvcc --list-gpu-code`` (``sm_75`` lines)."""
    return sorted({parse_arch(m) for m in re.findall(r"\bsm_\d+[af]?\b", list_gpu_code_output)}, key=_arch_key)


def torch_archs(arch_flags):
    """Architectures the installed torch ships kernels for, from its arch list (``["sm_80", "sm_90"]``
    or ``"-gencode compute=compute_80,code=sm_80 ..."``-style strings); virtual ``compute_`` entries skipped."""
    if isinstance(arch_flags, str):
        arch_flags = [arch_flags]
    found = set()
    for entry in arch_flags:
        found.update(parse_arch(m) for m in re.findall(r"\bsm_\d+[af]?\b", entry))
    return sorted(found, key=_arch_key)


def default_archs(torch_list, nvcc_list, extra=()):
    """Architectures to build when ``TORCH_CUDA_ARCH_LIST`` is unset: those torch ships kernels for that
    nvcc can compile (``FALLBACK_ARCHS`` in place of torch's when it names none), plus ``extra``.
    Arch-specific variants (``90a``) are left out of the default. Raises ``ValueError`` when nothing remains.
    """
    base = [a for a in (torch_list or FALLBACK_ARCHS) if a.isdigit()]
    known = set(nvcc_list)
    chosen = [a for a in base if a in known]
    for a in extra:
        if a not in known:
            raise ValueError(
                f"PTL_EXT_CUDA_ARCH: nvcc cannot generate code for sm_{a} (it knows {' '.join(nvcc_list) or 'none'})"
            )
        chosen.append(a)
    chosen = sorted(set(chosen), key=_arch_key)
    if not chosen:
        raise ValueError(
            f"no CUDA architecture both torch ({' '.join(torch_list) or 'none'}) and nvcc "
            f"({' '.join(nvcc_list) or 'none'}) support: set TORCH_CUDA_ARCH_LIST"
        )
    return chosen


def gencode_flags(archs):
    """nvcc flags: machine code for every architecture in ``archs`` and PTX for the newest (which the
    driver compiles for GPUs newer than any listed)."""
    flags = []
    for a in archs:
        flags += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    newest = archs[-1]
    return flags + ["-gencode", f"arch=compute_{newest},code=compute_{newest}"]


def cmake_architectures(archs):
    """The same choice as :func:`gencode_flags` in ``CMAKE_CUDA_ARCHITECTURES`` syntax ("80-real;90")."""
    return ";".join([f"{a}-real" for a in archs[:-1]] + [archs[-1]])


def arch_flags(env, torch_list, nvcc_list):
    """nvcc ``-gencode`` flags for the build: none when ``TORCH_CUDA_ARCH_LIST`` is set (torch then adds
    its own flags for exactly that list), else :func:`gencode_flags` of :func:`default_archs` with the
    ``PTL_EXT_CUDA_ARCH`` extras."""
    if env.get("TORCH_CUDA_ARCH_LIST", "").strip():
        return []
    return gencode_flags(default_archs(torch_list, nvcc_list, parse_arch_list(env.get("PTL_EXT_CUDA_ARCH", ""))))


def run_nvcc_list(nvcc):
    """Output of ``nvcc --list-gpu-code`` ("" when nvcc cannot be run)."""
    try:
        return subprocess.run([nvcc, "--list-gpu-code"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def elf_needed(data):
    """The ``DT_NEEDED`` entries (shared libraries it links) of the ELF file whose bytes are ``data``, from
    its dynamic section; None when ``data`` is not an ELF file with one (another platform's library)."""
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    wide, order = data[4] == 2, "<" if data[5] == 1 else ">"
    word = "Q" if wide else "I"
    try:
        shoff = struct.unpack_from(order + word, data, 0x28 if wide else 0x20)[0]
        shentsize, shnum = struct.unpack_from(order + "HH", data, 0x3A if wide else 0x2E)
        # section header: name, type, flags, addr, offset, size, link (ELF64: II QQQQ I; ELF32: II IIII I)
        layout = order + ("IIQQQQI" if wide else "IIIIIII")
        sections = [struct.unpack_from(layout, data, shoff + i * shentsize) for i in range(shnum)]
        dynamic = next((sec for sec in sections if sec[1] == 6), None)  # SHT_DYNAMIC
        if dynamic is None:
            return None
        strtab_offset = sections[dynamic[6]][4]
        entry = order + (word * 2)
        needed = []
        for at in range(dynamic[4], dynamic[4] + dynamic[5], struct.calcsize(entry)):
            tag, value = struct.unpack_from(entry, data, at)
            if tag == 0:  # DT_NULL
                break
            if tag == 1:  # DT_NEEDED
                start = strtab_offset + value
                needed.append(data[start : data.index(b"\0", start)].decode())
        return needed
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def cxx_runtime_problem(library_path):
    """One line saying what is wrong when the built extension at ``library_path`` does not link libstdc++
    dynamically (a compiler wrapper that links it statically, or not at all): a C++ exception thrown in it
    then cannot be caught by torch and a bad argument crashes Python instead of raising. None when it does,
    or when the file is not a Linux (ELF) library."""
    with open(library_path, "rb") as fh:
        needed = elf_needed(fh.read())
    if needed is None or any(name.startswith("libstdc++") for name in needed):
        return None
    return (
        f"{os.path.basename(library_path)} does not link libstdc++ dynamically (it needs only "
        f"{', '.join(needed) or 'nothing'}), so its C++ errors would crash Python instead of raising: rebuild "
        "with a compiler that links libstdc++ dynamically, e.g. CXX=/usr/bin/g++ CC=/usr/bin/gcc"
    )


def _main(argv):
    """``python _build_config.py --cmake-architectures NVCC``: the CMake list for the CI compile check
    (the fallback list when torch is not a CUDA build, with ``PTL_EXT_CUDA_ARCH`` added)."""
    if len(argv) != 2 or argv[0] != "--cmake-architectures":
        sys.exit("usage: _build_config.py --cmake-architectures NVCC")
    extra = parse_arch_list(os.environ.get("PTL_EXT_CUDA_ARCH", ""))
    print(cmake_architectures(default_archs((), nvcc_archs(run_nvcc_list(argv[1])), extra)))


if __name__ == "__main__":
    _main(sys.argv[1:])
