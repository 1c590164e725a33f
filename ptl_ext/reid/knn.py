"""Exact k-nearest-neighbour graph over all features for re-ranking, from torch or faiss.

Both backends return each feature's ``k`` nearest (self included) sorted by (squared distance, index)
and each row's maximum squared distance, which re-ranking divides that row by. Both find
``k + KNN_EXTRA`` candidates by matmul distances, then order them by distances summed in double from
the float differences (``pair_distances`` of :mod:`ptl_ext._torch_kernels`): matmul distances lose ~1e-6 of the
squared norms to cancellation and round identical features differently, so this makes the order exact
(duplicates tie exactly, and ties break by index).

- ``"torch"``: blocked matmul + top-k. On CPU the compiled kernel computes every block of the N x N
  distances once and merges it into both its rows' and its columns' neighbour lists (half the GEMM
  work of a plain search); on CUDA, row blocks with cuBLAS and ``topk``.
- ``"faiss"``: a flat L2 index (a GPU index when faiss has GPUs and the features are on CUDA); the row
  maxima come from a second flat search (inner product on augmented vectors gives each row's farthest
  feature). faiss is an optional dependency, imported only when this backend is asked for.
- ``search`` (torch backend): ``"bfloat16"``/``"float16"`` screen all distances with a low-precision GEMM
  and re-check every candidate exactly (:mod:`ptl_ext.reid.screen`, bound in docs/rerank_bound.md);
  ``"float32"`` is the symmetric float32 search above; ``"auto"`` is float32 on CUDA and, on CPU, bfloat16
  where the CPU has AMX for bfloat16, else float32 (:func:`ptl_ext.reid.screen.cpu_search_format`). Both
  centre the features first.
- ``"auto"``: ``"torch"``. Measured on the 2-core CPU machine of BENCHMARKS.md, faiss-cpu's flat search
  took 14x the time of the symmetric torch kernel for the same 8,192 x 2048-d graph, which also needs
  no second search for the row maxima; on CUDA the torch path stays on the device.
"""

import numpy as np
import torch

from .. import _checks, _torch_kernels, ops
from ..errors import MissingPackageError
from . import _validate, screen

BACKENDS = ("auto", "torch", "faiss")
_CPU_TILE = 2048  # rows and columns of one CPU block of distances


def _faiss():
    try:
        import faiss
    except ImportError as exc:
        raise MissingPackageError(
            "backend='faiss' needs the optional faiss package: pip install faiss-cpu (or faiss-gpu), "
            "or `pip install ptl-ext[faiss]`; backend='torch' needs nothing extra"
        ) from exc
    return faiss


def faiss_available():
    """True when faiss can be imported."""
    try:
        _faiss()
    except ImportError:
        return False
    return True


def _faiss_gpus():
    faiss = _faiss()
    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def resolve_backend(backend):
    """The concrete backend, ``"torch"`` or ``"faiss"``, that ``backend`` names (faiss checked importable)."""
    _checks.choice(backend, "backend", BACKENDS)
    if backend == "faiss":
        _faiss()
        return "faiss"
    return "torch"


def _faiss_index(index, device, resources):
    """``index`` itself, or its copy on ``device`` when ``resources`` (a faiss GPU context) is given."""
    if resources is None:
        return index
    return _faiss().index_cpu_to_gpu(resources, device.index or 0, index)


def _faiss_knn(feats, norms, k):
    faiss = _faiss()
    x = feats.detach().float().cpu().contiguous().numpy()
    n, dim = x.shape
    gpu = feats.device.type == "cuda" and _faiss_gpus() > 0
    resources = faiss.StandardGpuResources() if gpu else None  # one context for both searches
    index = _faiss_index(faiss.IndexFlatL2(dim), feats.device, resources)
    index.add(x)
    _, cand = index.search(x, min(n, k + _torch_kernels.KNN_EXTRA))
    dist, idx = _torch_kernels.refine_knn(feats, torch.from_numpy(cand).to(feats.device), k)
    # max_j |x_i - x_j|^2 = |x_i|^2 + max_j <[-2 x_i, 1], [x_j, |x_j|^2]>
    farthest = _faiss_index(faiss.IndexFlatIP(dim + 1), feats.device, resources)
    farthest.add(np.hstack([x, norms.detach().cpu().numpy()[:, None]]))
    best, _ = farthest.search(np.hstack([-2.0 * x, np.ones((n, 1), dtype=np.float32)]), 1)
    rowmax = (norms + torch.from_numpy(best[:, 0]).to(feats.device)).clamp_(min=0.0)
    return dist, idx, rowmax


def knn_search(feats, norms, k, backend="auto", search="auto"):
    """:func:`knn_graph` and how it searched: ``(dist, idx, rowmax, info)``, ``info`` a dict with
    ``"format"`` (the screening format, ``"float32"`` for the unscreened float32 search, ``"faiss"``) and
    ``"fallback_fraction"`` (rows screened again in float64; 0 when unscreened)."""
    if resolve_backend(backend) == "faiss":
        return (*_faiss_knn(feats, norms, k), {"format": "faiss", "fallback_fraction": 0.0})
    _checks.choice(search, "search", screen.SEARCH_FORMATS)
    fmt = screen.search_format(feats.device, search)
    if fmt != "float32":
        dist, idx, rowmax, stats = screen.screened_knn(feats, k, fmt)
        return dist, idx, rowmax, {"format": fmt, "fallback_fraction": stats.fallback_fraction}
    n = feats.shape[0]
    block = _CPU_TILE if feats.device.type == "cpu" else _validate.block_rows(None, n)
    # centred first: the GEMM's cancellation then scales with the features' spread, not their distance
    # from the origin (distances do not change under translation)
    centred = feats - feats.double().mean(0).to(feats.dtype)
    found = ops.rerank_knn(centred, torch.linalg.vector_norm(centred, dim=1).square_(), k, block)
    return (*found, {"format": "float32", "fallback_fraction": 0.0})


def knn_graph(feats, norms, k, backend="auto", search="auto"):
    """k nearest neighbours of every row of ``feats`` and each row's largest squared distance.

    Args:
        feats: ``[N, D]`` float32 on CPU or CUDA; norms: ``[N]`` its squared row norms.
        k: neighbours per row, self included (``1 <= k <= N``); backend: ``"auto"``, ``"torch"`` or ``"faiss"``.
        search: the torch backend's GEMM format, ``"auto"`` (:func:`ptl_ext.reid.screen.search_format`),
            ``"bfloat16"`` or ``"float16"`` (screened, exact: :func:`ptl_ext.reid.screen.screened_knn`) or
            ``"float32"`` (the blocked float32 search of :func:`ptl_ext.ops.rerank_knn`).

    Returns:
        ``(dist [N, k] float32, idx [N, k] int64, rowmax [N] float32)`` on the features' device.
    """
    return knn_search(feats, norms, k, backend, search)[:3]
