"""Build of ``ptl_ext._C``: the CPU kernels always, the CUDA kernels when torch and nvcc allow.

Environment switches:
    PTL_EXT_FORCE_CUDA=1   build the CUDA kernels even when no GPU is visible (needs nvcc and a CUDA torch)
    PTL_EXT_SKIP_CUDA=1    never build the CUDA kernels
    MAX_JOBS=N             parallel compile jobs (read by torch's ninja build)
    PTL_EXT_CUDA_ARCH      extra ``-gencode`` targets, e.g. "100" (sm_80 and sm_90 are always built)
"""

import glob
import hashlib
import os
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


def _flag(name):
    return os.environ.get(name, "0").lower() in ("1", "true", "yes", "on")


def _want_cuda():
    if _flag("PTL_EXT_SKIP_CUDA"):
        return False
    has_cuda_torch = torch.version.cuda is not None
    has_nvcc = CUDA_HOME is not None and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc"))
    if _flag("PTL_EXT_FORCE_CUDA"):
        if not (has_cuda_torch and has_nvcc):
            sys.exit(
                "PTL_EXT_FORCE_CUDA=1 needs a CUDA build of torch and nvcc "
                f"(torch.version.cuda={torch.version.cuda}, CUDA_HOME={CUDA_HOME})."
            )
        return True
    return has_cuda_torch and has_nvcc and torch.cuda.is_available()


def _sources(pattern):
    return sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "csrc", "**", pattern), recursive=True))


def _gencode_flags():
    archs = ["80", "90"] + [a for a in os.environ.get("PTL_EXT_CUDA_ARCH", "").replace(",", " ").split() if a]
    flags = []
    for arch in dict.fromkeys(archs):
        flags += ["-gencode", f"arch=compute_{arch},code=sm_{arch}"]
    return flags + ["-gencode", f"arch=compute_{archs[-1]},code=compute_{archs[-1]}"]


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
    nvcc_flags = ["-O3", "--use_fast_math", "-lineinfo"] + _gencode_flags()
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


setup(
    ext_modules=[_extension()],
    cmdclass={"build_ext": PersistentBuildExtension},
)
