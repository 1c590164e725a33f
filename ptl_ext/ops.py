"""Public wrappers of the compiled ``torch.ops.ptl_ext`` ops, with their fake and autograd registrations.

Importing this module loads ``ptl_ext._C``. If that fails (an install without the
compiled extension) the wrappers fall back to the pure-PyTorch twins of :mod:`ptl_ext.reference` with a
one-time warning; ``ptl_ext.ops.HAS_C`` tells which path is live. Sparse re-ranking matrices travel as
:class:`CSR` named tuples.
"""

import warnings

import torch

from . import _torch_kernels, reference
from ._torch_kernels import CSR

try:
    from . import _C  # noqa: F401  (loading the library registers torch.ops.ptl_ext)

    HAS_C = True
    C_IMPORT_ERROR = None
except ImportError as exc:
    HAS_C = False
    C_IMPORT_ERROR = exc

_warned = False


def _warn_fallback():
    global _warned
    if not _warned:
        warnings.warn(
            f"ptl_ext._C could not be imported ({C_IMPORT_ERROR}); using the slow pure-PyTorch reference. "
            "Rebuild with `pip install --no-build-isolation .`.",
            RuntimeWarning,
            stacklevel=3,
        )
        _warned = True


# Whether this build of _C has CUDA kernels for the cell (a build on a CPU-only torch or with
# PTL_EXT_SKIP_CUDA=1 has none). Read once: a constant for torch.compile to trace through.
CELL_HAS_CUDA = HAS_C and torch._C._dispatch_has_kernel_for_dispatch_key("ptl_ext::bconv_cell_update", "CUDA")


def _check_cell_cuda_built(gates, c_prev, has_cuda_kernel):
    """Raise ``RuntimeError`` saying how to rebuild when a CUDA input meets a ``_C`` without CUDA kernels."""
    on_cuda = gates.device.type == "cuda" or (c_prev is not None and c_prev.device.type == "cuda")
    if on_cuda and not has_cuda_kernel:
        raise RuntimeError(
            "bconv_cell_update: got a CUDA tensor, but ptl_ext._C was built without CUDA kernels (a CPU-only "
            "torch or no nvcc at build time, or PTL_EXT_SKIP_CUDA=1). With a CUDA build of torch and nvcc "
            "installed, rebuild with `PTL_EXT_FORCE_CUDA=1 pip install --no-build-isolation --no-deps .` "
            "(or `python setup.py build_ext --inplace` in a checkout); no GPU is needed to build."
        )


def bconv_cell_update(gates, c_prev=None):
    """Fused BConv-Cell update: ``(y, c)`` from gate pre-activations and the previous state.

    Args:
        gates: ``[B, 4K, H, W]`` float32/float64/bfloat16 (CUDA also float16), any strides;
            channel chunks in order i, f, o, g.
        c_prev: ``[B, K, H, W]`` of the same dtype and device, or ``None`` for a zero state.

    Returns:
        ``(y, c)``, contiguous ``[B, K, H, W]`` tensors; differentiable in ``gates`` and ``c_prev``.

    Raises:
        RuntimeError: a CUDA input when this build of ``ptl_ext._C`` has no CUDA kernels (the message
            says how to rebuild; the slow reference is not substituted silently).
    """
    if not HAS_C:
        _warn_fallback()
        return reference.bconv_cell_update(gates, c_prev)
    _check_cell_cuda_built(gates, c_prev, CELL_HAS_CUDA)
    return torch.ops.ptl_ext.bconv_cell_update.default(gates, c_prev)


def cpu_kernel_isa():
    """Name of the SIMD kernel family the CPU update uses here: ``"default"``, ``"avx2"`` or ``"avx512"``."""
    if not HAS_C:
        return "reference"
    return torch.ops.ptl_ext.cpu_kernel_isa.default()


if HAS_C:

    def _state_shape(gates):
        torch._check_value(
            gates.dim() == 4, lambda: f"bconv_cell_update: gates must be 4-D [B, 4K, H, W], got {gates.dim()}-D"
        )
        torch._check_value(
            gates.shape[1] % 4 == 0,
            lambda: f"bconv_cell_update: gates channels ({gates.shape[1]}) must be divisible by 4",
        )
        b, c4, h, w = gates.shape
        return (b, c4 // 4, h, w)

    def _check_state(t, name, gates, shape, op="bconv_cell_update"):
        if t is None:
            return
        if t.device != gates.device:
            raise ValueError(f"{op}: {name} must be on the device of gates ({gates.device}), got {t.device}")
        if t.dtype != gates.dtype:
            raise TypeError(f"{op}: {name} must have the dtype of gates ({gates.dtype}), got {t.dtype}")
        torch._check_value(
            tuple(t.shape) == shape, lambda: f"{op}: {name} must have shape {shape}, got {tuple(t.shape)}"
        )

    @torch.library.register_fake("ptl_ext::bconv_cell_update")
    def _bconv_cell_update_fake(gates, c_prev):
        shape = _state_shape(gates)
        _check_state(c_prev, "c_prev", gates, shape)
        return gates.new_empty(shape), gates.new_empty(shape)

    @torch.library.register_fake("ptl_ext::bconv_cell_update_backward")
    def _bconv_cell_update_backward_fake(gates, c_prev, c, grad_y, grad_c, need_grad_c_prev):
        shape = _state_shape(gates)
        for name, t in (("c_prev", c_prev), ("c", c), ("grad_y", grad_y), ("grad_c", grad_c)):
            _check_state(t, name, gates, shape, op="bconv_cell_update_backward")
        grad_c_prev = gates.new_empty(shape) if need_grad_c_prev else gates.new_empty((0,))
        return torch.empty_like(gates, memory_format=torch.contiguous_format), grad_c_prev

    def _setup_context(ctx, inputs, output):
        gates, c_prev = inputs
        _, c = output
        ctx.save_for_backward(gates, c_prev, c)

    def _backward(ctx, grad_y, grad_c):
        gates, c_prev, c = ctx.saved_tensors
        need_grad_c_prev = c_prev is not None and ctx.needs_input_grad[1]
        grad_gates, grad_c_prev = torch.ops.ptl_ext.bconv_cell_update_backward.default(
            gates, c_prev, c, grad_y, grad_c, need_grad_c_prev
        )
        return grad_gates, (grad_c_prev if need_grad_c_prev else None)

    torch.library.register_autograd("ptl_ext::bconv_cell_update", _backward, setup_context=_setup_context)


# ------------------------------------------------- ReID ranking and k-reciprocal re-ranking
# CPU kernels for every op; CUDA kernels for the sparse steps (V, query expansion, Jaccard). On CUDA the
# neighbour search, the ranking statistics and float64 distances run as torch functions
# (ptl_ext._torch_kernels: cuBLAS matmul + top-k, GPU sort). A build without a kernel for the device falls
# back to the pure-PyTorch twins of ptl_ext.reference.


def _compiled(name, tensor):
    """The compiled ``ptl_ext::<name>`` if it has a kernel for ``tensor``'s device, else ``None``."""
    if not HAS_C:
        _warn_fallback()
        return None
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(tensor.device.type)
    if key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(f"ptl_ext::{name}", key):
        return getattr(torch.ops.ptl_ext, name).default
    return None


def squared_euclidean(a, b, norm_a, norm_b):
    """Squared euclidean distances ``[A, B]`` between rows of ``a [A, D]`` and ``b [B, D]`` (squared norms
    ``norm_a [A]``, ``norm_b [B]``); values within rounding of zero are exactly 0. The CPU kernel (float32)
    finishes the GEMM output in one pass; other devices and dtypes use the torch function."""
    op = _compiled("squared_euclidean", a) if a.dtype == torch.float32 else None
    if op is None:
        return _torch_kernels.squared_euclidean(a, b, norm_a, norm_b)
    return op(a=a, b=b, norm_a=norm_a, norm_b=norm_b)


def rerank_knn(feats, norms, k, block):
    """``(dist [N, k] float32, idx [N, k] int64, rowmax [N] float32)``: the k nearest of every row of
    ``feats [N, D]`` float32 (squared norms ``norms [N]``) sorted by (squared distance, index), and each
    row's largest squared distance. CPU: symmetric blocked GEMM (``block`` rows per block), each block
    of distances computed once for both its rows and columns; CUDA: row blocks, matmul + top-k."""
    op = _compiled("rerank_knn", feats)
    if op is None:
        return _torch_kernels.rerank_knn(feats, norms, k, block)
    return op(feats=feats, norms=norms, k=k, block=block)


def rerank_screen_select(est, width, far_width):
    """``(small [R, width], small_idx, large [R, far_width], large_idx)``: the smallest entries of each row of
    ``est [R, N]`` (float32, bfloat16 or float16) ascending and the largest descending, as float32, with
    their int64 column indices. CPU: one
    pass with two bounded heaps; other devices: ``topk``."""
    op = _compiled("rerank_screen_select", est)
    if op is None:
        return _torch_kernels.rerank_screen_select(est, width, far_width)
    return op(est=est, width=width, far_width=far_width)


def rerank_refine(feats, rows, cand, count, k):
    """``(dist [R, k] float32, idx [R, k] int64, far [R] float32)``: the first ``count [R]`` candidates
    ``cand [R, C]`` int64 of the features ``rows [R]`` of ``feats [N, D]`` float32, ordered by exact pair
    distance (summed in double from float differences) then index, the ``k`` first kept, and each row's
    largest candidate distance; see :func:`ptl_ext._torch_kernels.rerank_refine`."""
    op = _compiled("rerank_refine", feats)
    if op is None:
        return _torch_kernels.rerank_refine(feats, rows, cand, count, k)
    return op(feats=feats, rows=rows, cand=cand, count=count, k=k)


def rerank_sparse_v(feats, rowmax, nn_idx, k1, k_half):
    """V of k-reciprocal re-ranking as a :class:`CSR` ``(ptr [N+1], col [nnz], val [nnz])`` from the
    features ``feats [N, D]`` float32, their rows' maximum squared distances ``rowmax [N]`` and the neighbour
    table ``nn_idx [N, K >= k1+1]`` int64; see :func:`ptl_ext.reference.rerank_sparse_v`."""
    op = _compiled("rerank_sparse_v", feats)
    if op is None:
        return reference.rerank_sparse_v(feats, rowmax, nn_idx, k1, k_half)
    return CSR(*op(feats=feats, rowmax=rowmax, nn_idx=nn_idx, k1=k1, k_half=k_half))


def rerank_query_expansion(v, nn_idx, k2):
    """The :class:`CSR` ``v`` averaged over each row's ``k2`` nearest (``nn_idx [N, K >= k2]`` int64), as a
    :class:`CSR`; see :func:`ptl_ext.reference.rerank_query_expansion`."""
    op = _compiled("rerank_query_expansion", nn_idx)
    if op is None:
        return reference.rerank_query_expansion(v, nn_idx, k2)
    return CSR(*op(ptr=v.ptr, col=v.col, val=v.val, nn_idx=nn_idx, k2=k2))


def rerank_jaccard(dist, rowmax, v, row_start, inverse, lambda_value, *, check_csr=True):
    """Final re-ranked distances ``[Qb, G]`` float32 of a block of query rows ``row_start ..``; see
    :func:`ptl_ext.reference.rerank_jaccard` (``v`` and ``inverse`` are :class:`CSR` matrices).

    ``check_csr=False`` skips the checks of the entries of ``v`` and ``inverse`` (O(nnz) scans and host
    synchronisations): only for the same matrices an earlier call with ``check_csr=True`` accepted,
    as re-ranking does for its later query blocks. Shapes, dtypes, devices and ranges are checked always.
    """
    op = _compiled("rerank_jaccard" if check_csr else "rerank_jaccard_unchecked", dist)
    if op is None and not check_csr:
        op = _compiled("rerank_jaccard", dist)  # a build whose device kernels lack the unchecked variant
    if op is None:
        return reference.rerank_jaccard(dist, rowmax, v, row_start, inverse, lambda_value)
    return op(
        dist=dist,
        rowmax=rowmax,
        ptr=v.ptr,
        col=v.col,
        val=v.val,
        row_start=row_start,
        inv_ptr=inverse.ptr,
        inv_row=inverse.col,
        inv_val=inverse.val,
        lambda_value=lambda_value,
    )


def reid_rank_stats(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per-query ``(first [Q] int64, ap [Q] float64, inp [Q] float64)`` of the Market protocol from
    ``distmat [Q, G]`` float32/float64; see :func:`ptl_ext.reference.reid_rank_stats`."""
    op = _compiled("reid_rank_stats", distmat)
    if op is None:
        return _torch_kernels.reid_rank_stats(distmat, q_pids, g_pids, q_camids, g_camids)
    return op(distmat=distmat, q_pids=q_pids, g_pids=g_pids, q_camids=q_camids, g_camids=g_camids)


if HAS_C:
    # The fake kernels check what the compiled ops check without reading data, raising the same types:
    # ValueError for ranks, shapes, devices and ranges, TypeError for dtypes.

    def _fake_rank(t, dim, op, arg, layout):
        if t.dim() != dim:
            raise ValueError(
                f"{op}: {arg} must be a {dim}-D tensor {layout}, got a {t.dim()}-D tensor of shape {tuple(t.shape)}"
            )

    def _fake_dtype(t, dtypes, op, arg):
        if t.dtype not in dtypes:
            raise TypeError(f"{op}: {arg} must have dtype {', '.join(map(str, dtypes))}, got {t.dtype}")

    def _fake_sizes(t, sizes, op, arg, what):
        torch._check_value(
            len(t.shape) == len(sizes) and all(a == b for a, b in zip(t.shape, sizes)),
            lambda: f"{op}: {arg} must have shape {what} = {list(sizes)}, got {list(t.shape)}",
        )

    def _fake_device(t, ref, op, arg, ref_arg):
        if t.device != ref.device:
            raise ValueError(f"{op}: {arg} must be on the device of {ref_arg} ({ref.device}), got {t.device}")

    def _fake_vector(t, n, dtype, ref, op, arg, what):
        _fake_rank(t, 1, op, arg, what)
        _fake_dtype(t, (dtype,), op, arg)
        _fake_sizes(t, (n,), op, arg, what)
        _fake_device(t, ref, op, arg, "the first argument")

    def _fake_csr(ptr, col, val, rows, ref, op, names):
        _fake_vector(ptr, rows + 1, torch.int64, ref, op, names[0], "[rows + 1]")
        _fake_rank(col, 1, op, names[1], "[nnz]")
        _fake_vector(col, col.shape[0], torch.int64, ref, op, names[1], "[nnz]")
        _fake_vector(val, col.shape[0], torch.float32, ref, op, names[2], "[nnz] (as many as the column indices)")

    def _fake_nn(nn_idx, n, min_k, ref, op, why):
        _fake_rank(nn_idx, 2, op, "nn_idx", "[N, K]")
        _fake_dtype(nn_idx, (torch.int64,), op, "nn_idx")
        torch._check_value(nn_idx.shape[0] == n, lambda: f"{op}: nn_idx must have {n} rows, got {nn_idx.shape[0]}")
        torch._check_value(
            nn_idx.shape[1] >= min_k,
            lambda: f"{op}: nn_idx must have at least {min_k} columns ({why}), got {nn_idx.shape[1]}",
        )
        _fake_device(nn_idx, ref, op, "nn_idx", "the first argument")

    def _csr_fake(rows, like_index, like_value):
        nnz = torch.library.get_ctx().new_dynamic_size()
        return CSR(like_index.new_empty((rows + 1,)), like_index.new_empty((nnz,)), like_value.new_empty((nnz,)))

    @torch.library.register_fake("ptl_ext::squared_euclidean")
    def _squared_euclidean_fake(a, b, norm_a, norm_b):
        op = "squared_euclidean"
        _fake_rank(a, 2, op, "a", "[A, D]")
        _fake_dtype(a, (torch.float32,), op, "a")
        _fake_rank(b, 2, op, "b", "[B, D]")
        for arg, t in (("b", b), ("norm_a", norm_a), ("norm_b", norm_b)):
            _fake_device(t, a, op, arg, "a")
            _fake_dtype(t, (a.dtype,), op, arg)
        torch._check_value(
            b.shape[1] == a.shape[1], lambda: f"{op}: b must have D = {a.shape[1]} columns like a, got {b.shape[1]}"
        )
        _fake_rank(norm_a, 1, op, "norm_a", "[A]")
        _fake_sizes(norm_a, (a.shape[0],), op, "norm_a", "[A]")
        _fake_rank(norm_b, 1, op, "norm_b", "[B]")
        _fake_sizes(norm_b, (b.shape[0],), op, "norm_b", "[B]")
        return a.new_empty((a.shape[0], b.shape[0]))

    @torch.library.register_fake("ptl_ext::rerank_knn")
    def _rerank_knn_fake(feats, norms, k, block):
        op = "rerank_knn"
        _fake_rank(feats, 2, op, "feats", "[N, D]")
        _fake_dtype(feats, (torch.float32,), op, "feats")
        n = feats.shape[0]
        _fake_rank(norms, 1, op, "norms", "[N]")
        _fake_device(norms, feats, op, "norms", "feats")
        _fake_dtype(norms, (feats.dtype,), op, "norms")
        _fake_sizes(norms, (n,), op, "norms", "[N]")
        torch._check_value(k >= 1, lambda: f"{op}: k must be in [1, N] = [1, {n}], got {k}")
        torch._check_value(k <= n, lambda: f"{op}: k must be in [1, N] = [1, {n}], got {k}")
        torch._check_value(block >= 1, lambda: f"{op}: block must be >= 1, got {block}")
        return feats.new_empty((n, k)), feats.new_empty((n, k), dtype=torch.int64), feats.new_empty((n,))

    @torch.library.register_fake("ptl_ext::rerank_screen_select")
    def _rerank_screen_select_fake(est, width, far_width):
        op = "rerank_screen_select"
        _fake_rank(est, 2, op, "est", "[R, N]")
        _fake_dtype(est, (torch.float32, torch.bfloat16, torch.float16), op, "est")
        r, n = est.shape
        torch._check_value(1 <= width <= n, lambda: f"{op}: width must be in [1, N] = [1, {n}], got {width}")
        torch._check_value(
            1 <= far_width <= n, lambda: f"{op}: far_width must be in [1, N] = [1, {n}], got {far_width}"
        )
        idx = est.new_empty((r, width), dtype=torch.int64)
        values = dict(dtype=torch.float32)
        return (
            est.new_empty((r, width), **values),
            idx,
            est.new_empty((r, far_width), **values),
            idx.new_empty((r, far_width)),
        )

    @torch.library.register_fake("ptl_ext::rerank_refine")
    def _rerank_refine_fake(feats, rows, cand, count, k):
        op = "rerank_refine"
        _fake_rank(feats, 2, op, "feats", "[N, D]")
        _fake_dtype(feats, (torch.float32,), op, "feats")
        _fake_rank(rows, 1, op, "rows", "[R]")
        _fake_rank(cand, 2, op, "cand", "[R, C]")
        _fake_rank(count, 1, op, "count", "[R]")
        for arg, t in (("rows", rows), ("cand", cand), ("count", count)):
            _fake_device(t, feats, op, arg, "feats")
            _fake_dtype(t, (torch.int64,), op, arg)
        r = rows.shape[0]
        _fake_sizes(cand, (r, cand.shape[1]), op, "cand", "[R, C]")
        _fake_sizes(count, (r,), op, "count", "[R]")
        torch._check_value(k >= 1, lambda: f"{op}: k must be in [1, C] = [1, {cand.shape[1]}], got {k}")
        torch._check_value(k <= cand.shape[1], lambda: f"{op}: k must be in [1, C] = [1, {cand.shape[1]}], got {k}")
        return feats.new_empty((r, k)), cand.new_empty((r, k)), feats.new_empty((r,))

    @torch.library.register_fake("ptl_ext::rerank_sparse_v")
    def _rerank_sparse_v_fake(feats, rowmax, nn_idx, k1, k_half):
        op = "rerank_sparse_v"
        _fake_rank(feats, 2, op, "feats", "[N, D]")
        _fake_dtype(feats, (torch.float32,), op, "feats")
        torch._check_value(k1 >= 1, lambda: f"{op}: k1 must be >= 1, got {k1}")
        torch._check_value(0 <= k_half <= k1, lambda: f"{op}: k_half must be in [0, k1], got {k_half}")
        _fake_vector(rowmax, feats.shape[0], torch.float32, feats, op, "rowmax", "[N]")
        _fake_nn(nn_idx, feats.shape[0], k1 + 1, feats, op, "k1 + 1")
        return _csr_fake(feats.shape[0], nn_idx, feats)

    @torch.library.register_fake("ptl_ext::rerank_query_expansion")
    def _rerank_query_expansion_fake(ptr, col, val, nn_idx, k2):
        op = "rerank_query_expansion"
        _fake_rank(nn_idx, 2, op, "nn_idx", "[N, K]")
        torch._check_value(k2 >= 1, lambda: f"{op}: k2 must be >= 1, got {k2}")
        _fake_csr(ptr, col, val, nn_idx.shape[0], nn_idx, op, ("ptr", "col", "val"))
        _fake_nn(nn_idx, nn_idx.shape[0], k2, nn_idx, op, "k2")
        return _csr_fake(nn_idx.shape[0], nn_idx, val)

    def _rerank_jaccard_checks(op, dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
        _fake_rank(dist, 2, op, "dist", "[Qb, G]")
        _fake_dtype(dist, (torch.float32,), op, "dist")
        if not 0.0 <= lambda_value <= 1.0:
            raise ValueError(f"{op}: lambda_value must be in [0, 1], got {lambda_value}")
        _fake_vector(rowmax, dist.shape[0], torch.float32, dist, op, "rowmax", "[Qb]")
        _fake_rank(ptr, 1, op, "ptr", "[N + 1]")
        n = ptr.shape[0] - 1
        torch._check_value(
            row_start >= 0 and row_start + dist.shape[0] <= n,
            lambda: (
                f"{op}: rows [row_start, row_start + Qb) = [{row_start}, "
                f"{row_start + dist.shape[0]}) must lie within the {n} rows of V"
            ),
        )
        _fake_csr(ptr, col, val, n, dist, op, ("ptr", "col", "val"))
        _fake_csr(inv_ptr, inv_row, inv_val, n, dist, op, ("inv_ptr", "inv_row", "inv_val"))
        return torch.empty_like(dist, memory_format=torch.contiguous_format)

    @torch.library.register_fake("ptl_ext::rerank_jaccard")
    def _rerank_jaccard_fake(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
        return _rerank_jaccard_checks(
            "rerank_jaccard", dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value
        )

    @torch.library.register_fake("ptl_ext::rerank_jaccard_unchecked")
    def _rerank_jaccard_unchecked_fake(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
        return _rerank_jaccard_checks(
            "rerank_jaccard_unchecked", dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value
        )

    @torch.library.register_fake("ptl_ext::reid_rank_stats")
    def _reid_rank_stats_fake(distmat, q_pids, g_pids, q_camids, g_camids):
        op = "reid_rank_stats"
        _fake_rank(distmat, 2, op, "distmat", "[Q, G]")
        _fake_dtype(distmat, (torch.float32, torch.float64), op, "distmat")
        q, g = distmat.shape
        for arg, t, n, what in (
            ("q_pids", q_pids, q, "[Q]"),
            ("g_pids", g_pids, g, "[G]"),
            ("q_camids", q_camids, q, "[Q]"),
            ("g_camids", g_camids, g, "[G]"),
        ):
            _fake_rank(t, 1, op, arg, what)
            _fake_dtype(t, (torch.int64,), op, arg)
            _fake_sizes(t, (n,), op, arg, what)
        stat = distmat.new_empty((q,), dtype=torch.float64)
        return q_pids.new_empty((q,)), stat, torch.empty_like(stat)
