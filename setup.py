"""Build of ``ptl_ext._C``: the CPU kernels always, the CUDA kernels whenever torch is a CUDA build and
nvcc is found (a GPU need not be visible at build time).

Environment switches (decided in ptl_ext/_build_config.py):
    PTL_EXT_SKIP_CUDA=1    never build the CUDA kernels
    PTL_EXT_FORCE_CUDA=1   fail instead of building CPU-only when CUDA cannot be built
    TORCH_CUDA_ARCH_LIST   GPU architectures in torch's syntax, e.g. "7.5;8.6;9.0+PTX" (used as given)
    PTL_EXT_CUDA_ARCH      architectures added to the default list, e.g. "8.6" or "sm_120"
    MAX_JOBS=N             parallel compile jobs (read by torch's ninja build)
Default architectures: those the installed torch ships kernels for that nvcc can compile, with PTX
for the newest.
On Linux a built library that does not link libstdc++ dynamically is removed and the build fails: its
C++ errors (bad arguments to an op) would crash Python instead of raising. This happens with compiler
wrappers that link libstdc++ statically; rebuild with e.g. CXX=/usr/bin/g++ CC=/usr/bin/gcc.
"""

import glob
import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError:
    sys.exit(
        "ptl-ext is compiled against the torch you already have installed, but this build cannot import torch.\n"
        "A plain `pip install .` builds in an isolated environment that cannot see your torch.\n"
        "Install torch first (e.g. `pip install torch==2.13.0`), then run:\n"
        "    pip install --no-build-isolation .\n"
    )

ROOT = os.path.dirname(os.path.abspath(__file__))


def _load_build_config():
    path = os.path.join(ROOT, "ptl_ext", "_build_config.py")
    spec = importlib.util.spec_from_file_location("_ptl_build_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_config = _load_build_config()


def _nvcc():
    """nvcc of the toolkit torch would use (torch leaves CUDA_HOME unset in a CPU build: then CUDA_HOME or PATH)."""
    home = CUDA_HOME or os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    return os.path.join(home, "bin", "nvcc") if home else shutil.which("nvcc")


def _want_cuda():
    nvcc = _nvcc()
    has_nvcc = nvcc is not None and os.path.exists(nvcc)
    try:
        with_cuda, reason = build_config.want_cuda(os.environ, torch.version.cuda, has_nvcc)
    except RuntimeError as exc:
        sys.exit(str(exc))
    print(f"ptl-ext: {'building' if with_cuda else 'not building'} the CUDA kernels ({reason})", file=sys.stderr)
    return with_cuda


def _torch_arch_list():
    """The architectures the installed CUDA torch was built for (known without a visible GPU)."""
    if hasattr(torch._C, "_cuda_getArchFlags"):
        return build_config.torch_archs(torch._C._cuda_getArchFlags() or "")
    return build_config.torch_archs(torch.cuda.get_arch_list())


def _sources(pattern):
    return sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "**", pattern), recursive=True)
    )


def _gencode_flags():
    nvcc_list = build_config.nvcc_archs(build_config.run_nvcc_list(_nvcc()))
    try:
        flags = build_config.arch_flags(os.environ, _torch_arch_list(), nvcc_list)
    except ValueError as exc:
        sys.exit(f"ptl-ext: {exc}")
    shown = os.environ.get("TORCH_CUDA_ARCH_LIST") or " ".join(f for f in flags if f != "-gencode")
    print(f"ptl-ext: CUDA architectures: {shown}", file=sys.stderr)
    return flags


def _extension():
    with_cuda = _want_cuda()
    cpp = [s for s in _sources("*.cpp") if not s.endswith("_cuda_glue.cpp")]
    cxx_flags = ["-O3", "-fvisibility=hidden", "-fopenmp"]
    common = dict(
        name="ptl_ext._C",
        include_dirs=[os.path.join(ROOT, "csrc")],
        py_limited_api=False,
    )
    if not with_cuda:
        return CppExtension(sources=cpp, extra_compile_args={"cxx": cxx_flags}, extra_link_args=["-fopenmp"], **common)
    sources = cpp + _sources("*_cuda_glue.cpp") + _sources("*.cu")
    # No --use_fast_math: it would make float32 tanh/exp approximate (see csrc/cell/cell_cuda.cu).
    nvcc_flags = ["-O3", "-lineinfo"] + _gencode_flags()
    return CUDAExtension(
        sources=sources,
        extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags},
        extra_link_args=["-fopenmp"],
        **common,
    )


class PersistentBuildExtension(BuildExtension.with_options(use_ninja=True)):
    """torch's ninja build, always in ``build/temp.<platform>-<python>-<environment>``: ``pip install -e``
    would otherwise compile in a new temporary folder each time. Unchanged sources are then not recompiled;
    each environment (whose include paths differ) keeps its own object files."""

    def finalize_options(self):
        super().finalize_options()
        env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:8]
        tag = f"temp.{sysconfig.get_platform()}-{sys.implementation.cache_tag}-{env}"
        self.build_temp = os.path.join(ROOT, "build", tag)

    def run(self):
        """Build, then refuse a library whose C++ errors could not reach Python (see
        ``_build_config.cxx_runtime_problem``): it is removed and the build fails with one line."""
        super().run()
        for ext in self.extensions:
            path = self.get_ext_fullpath(ext.name)
            problem = os.path.exists(path) and build_config.cxx_runtime_problem(path)
            if problem:
                os.remove(path)
                sys.exit(f"ptl-ext: {problem} (compiler: {os.environ.get('CXX', 'the default c++')})")


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": PersistentBuildExtension},
)
