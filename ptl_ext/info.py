"""What this ptl-ext installation is made of, for bug reports: ``python -m ptl_ext.info`` (or ``ptl info``).

Versions (python, torch and its CUDA, faiss, the optional export/logging packages), what was built
(the CPU kernel family, the CUDA architectures compiled into ``ptl_ext._C`` or "CPU-only build"),
the visible GPUs, and whether the compiled ops loaded at all.

The compiled library does not record its CUDA architectures, so they are read from the CUDA fat
binaries embedded in it: every fat binary starts with a 16-byte header (magic ``0xBA55ED50``,
version, header size, payload size) followed by entries whose headers give the kind (1 = PTX,
2 = ELF cubin) and the target architecture.
"""

import importlib
import os
import platform
import struct
import sys
from importlib import metadata

__all__ = ["collect_info", "format_info", "fatbin_archs", "main"]

FATBIN_MAGIC = 0xBA55ED50
_FATBIN_HEADER = struct.Struct("<IHHQ")  # magic, version, header size, payload size
_ENTRY_HEADER = struct.Struct("<HHIQIIHHI")  # kind, ?, header size, payload size, ?, ?, minor, major, arch
_KINDS = {1: "compute", 2: "sm"}


def fatbin_archs(data):
    """CUDA targets embedded in ``data`` (the bytes of an object file or shared library), sorted:
    ``"sm_90"`` for a cubin, ``"compute_90"`` for PTX. Empty for a library without CUDA code."""
    found = set()
    magic = struct.pack("<I", FATBIN_MAGIC)
    start = data.find(magic)
    while start != -1:
        if start + _FATBIN_HEADER.size <= len(data):
            _, version, header_size, size = _FATBIN_HEADER.unpack_from(data, start)
            if version == 1 and header_size == _FATBIN_HEADER.size:
                found |= _fatbin_entries(data, start + header_size, min(len(data), start + header_size + size))
        start = data.find(magic, start + 1)
    return sorted(found, key=lambda name: (int(name.split("_")[1]), name))


def _fatbin_entries(data, offset, end):
    targets = set()
    while offset + _ENTRY_HEADER.size <= end:
        kind, _, header_size, size, _, _, _, _, arch = _ENTRY_HEADER.unpack_from(data, offset)
        if kind not in _KINDS or header_size < _ENTRY_HEADER.size or not 10 <= arch < 1000:
            break  # not an entry header: stop reading this fat binary
        targets.add(f"{_KINDS[kind]}_{arch}")
        offset += header_size + size
    return targets


def _imported_version(module_name):
    """``module.__version__`` of an importable module, else ``None`` (a broken install included)."""
    try:
        module = importlib.import_module(module_name)
    except Exception:  # a broken optional install must not break the report
        return None
    return getattr(module, "__version__", "installed")


def _installed_version(*distributions):
    """Version of the first installed distribution among ``distributions`` (not imported: fast), else ``None``."""
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _gpus(torch):
    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
            }
        )
    return gpus


def collect_info():
    """The installation's facts as a dict of plain values (see :func:`format_info` for the keys)."""
    import torch

    from . import __version__, _build_config, ops
    from .reid.screen import search_format

    library = getattr(sys.modules.get("ptl_ext._C"), "__file__", None) if ops.HAS_C else None
    has_cuda_kernels = ops.HAS_C and torch._C._dispatch_has_kernel_for_dispatch_key(
        "ptl_ext::bconv_cell_update", "CUDA"
    )
    archs = []
    if library is not None and has_cuda_kernels:
        with open(library, "rb") as fh:
            archs = fatbin_archs(fh.read())
    if not ops.HAS_C:
        build = "not built (compiled ops missing: the pure-PyTorch reference runs instead)"
    elif has_cuda_kernels:
        build = "CUDA build (" + (", ".join(archs) or "architectures not readable") + ")"
    else:
        build = "CPU-only build"
    return {
        "ptl_ext": __version__,
        "ptl_ext_path": os.path.dirname(os.path.abspath(__file__)),
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "faiss": _imported_version("faiss"),
        "onnx": _installed_version("onnx"),
        "onnxscript": _installed_version("onnxscript"),
        "onnxruntime": _installed_version("onnxruntime", "onnxruntime-gpu"),
        "tensorboard": _installed_version("tensorboard"),
        "compiled_ops_loaded": ops.HAS_C,
        "compiled_ops_error": None if ops.HAS_C else str(ops.C_IMPORT_ERROR),
        "library": library,
        "cxx_runtime_problem": _build_config.cxx_runtime_problem(library) if library else None,
        "build": build,
        "cuda_kernels": bool(has_cuda_kernels),
        "cuda_archs": archs,
        "cpu_kernel_isa": ops.cpu_kernel_isa(),
        "rerank_search": {dev: search_format(dev) for dev in ("cpu", "cuda")[: 1 + torch.cuda.is_available()]},
        "cuda_available": torch.cuda.is_available(),
        "gpus": _gpus(torch),
    }


def format_info(info):
    """A plain-text report of :func:`collect_info`'s dict, one ``key: value`` line each, to paste into an issue."""

    def show(value):
        return "no" if value is False else "yes" if value is True else "-" if value in (None, []) else str(value)

    problem = info["cxx_runtime_problem"]
    cxx_errors = f"WILL CRASH Python: {problem}" if problem else "raised as Python exceptions"
    lines = [
        f"ptl-ext          {info['ptl_ext']} ({info['ptl_ext_path']})",
        f"python           {info['python']}",
        f"platform         {info['platform']}",
        f"torch            {info['torch']} (CUDA {show(info['torch_cuda'])})",
        f"faiss            {show(info['faiss'])}",
        f"onnx             {show(info['onnx'])}",
        f"onnxscript       {show(info['onnxscript'])}",
        f"onnxruntime      {show(info['onnxruntime'])}",
        f"tensorboard      {show(info['tensorboard'])}",
        f"compiled ops     {'loaded' if info['compiled_ops_loaded'] else 'NOT loaded: ' + info['compiled_ops_error']}",
        f"library          {show(info['library'])}",
        f"build            {info['build']}",
        f"C++ errors       {cxx_errors}",
        f"CPU kernels      {info['cpu_kernel_isa']}",
        f"re-ranking GEMM  {', '.join(f'{dev} {fmt}' for dev, fmt in info['rerank_search'].items())} (search='auto')",
        f"CUDA available   {show(info['cuda_available'])}",
    ]
    gpus = info["gpus"] or [None]
    for gpu in gpus:
        text = (
            "-"
            if gpu is None
            else (f"{gpu['index']}: {gpu['name']} (compute capability {gpu['capability']}, {gpu['memory_gib']} GiB)")
        )
        lines.append(f"GPU              {text}")
    return "\n".join(lines)


def main():
    """Print the report; returns 0."""
    print(format_info(collect_info()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
