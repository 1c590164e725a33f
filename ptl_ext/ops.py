"""Public wrappers of the compiled ``torch.ops.ptl_ext`` ops, with their fake and autograd registrations.

Importing this module loads ``ptl_ext._C``. If that fails (an install without the
compiled extension) the wrappers fall back to :mod:`ptl_ext.reference` with a
one-time warning; ``ptl_ext.ops.HAS_C`` tells which path is live.
"""

import warnings

import torch

from . import reference

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
        torch._check(gates.dim() == 4, lambda: f"bconv_cell_update: gates must be 4-D [B, 4K, H, W], got {gates.dim()}-D")
        torch._check(gates.shape[1] % 4 == 0, lambda: f"bconv_cell_update: gates channels ({gates.shape[1]}) must be divisible by 4")
        b, c4, h, w = gates.shape
        return (b, c4 // 4, h, w)

    def _check_state(t, name, gates, shape, op="bconv_cell_update"):
        if t is None:
            return
        if t.device != gates.device:
            raise ValueError(f"{op}: {name} must be on the device of gates ({gates.device}), got {t.device}")
        if t.dtype != gates.dtype:
            raise TypeError(f"{op}: {name} must have the dtype of gates ({gates.dtype}), got {t.dtype}")
        torch._check(tuple(t.shape) == shape, lambda: f"{op}: {name} must have shape {shape}, got {tuple(t.shape)}")

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


# ---------------------------------------------------------------- ReID ranking and k-reciprocal re-ranking (SPEC section 5)
# CPU kernels for every op; CUDA kernels for the sparse steps (V, query expansion, Jaccard). On CUDA the
# neighbour search and the ranking statistics run as torch ops (cuBLAS matmul + top-k, GPU sort): the
# reference twins, which also stand in for any kernel the build lacks.


def _rerank_impl(name, tensor):
    """The compiled ``ptl_ext::<name>`` if it has a kernel for ``tensor``'s device, else the reference twin."""
    if not HAS_C:
        _warn_fallback()
        return getattr(reference, name)
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(tensor.device.type)
    if key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(f"ptl_ext::{name}", key):
        return getattr(torch.ops.ptl_ext, name).default
    return getattr(reference, name)


def squared_euclidean(a, b, norm_a, norm_b):
    """Squared euclidean distances ``[A, B]`` between rows of ``a [A, D]`` and ``b [B, D]`` (squared norms
    ``norm_a [A]``, ``norm_b [B]``); values within rounding of zero are exactly 0. The CPU kernel (float32)
    finishes the GEMM output in one pass; other devices and dtypes use the torch twin."""
    if a.dtype != torch.float32:
        return reference.squared_euclidean(a, b, norm_a, norm_b)
    return _rerank_impl("squared_euclidean", a)(a, b, norm_a, norm_b)


def rerank_knn(feats, norms, k, block):
    """``(dist [N, k] float32, idx [N, k] int64, rowmax [N] float32)``: the k nearest of every row of
    ``feats [N, D]`` float32 (squared norms ``norms [N]``) sorted by (squared distance, index), and each
    row's largest squared distance. CPU: symmetric blocked GEMM (``block`` rows per block), each block
    of distances computed once for both its rows and columns; CUDA: row blocks, matmul + top-k."""
    return _rerank_impl("rerank_knn", feats)(feats, norms, k, block)


def rerank_sparse_v(feats, rowmax, nn_idx, k1, k_half):
    """V of k-reciprocal re-ranking as CSR ``(ptr [N+1], col [nnz], val [nnz])`` from the neighbour
    table ``nn_idx [N, K >= k1+1]`` int64; see :func:`ptl_ext.reference.rerank_sparse_v`."""
    return _rerank_impl("rerank_sparse_v", feats)(feats, rowmax, nn_idx, k1, k_half)


def rerank_query_expansion(ptr, col, val, nn_idx, k2):
    """V averaged over each row's ``k2`` nearest, as CSR; see :func:`ptl_ext.reference.rerank_query_expansion`."""
    return _rerank_impl("rerank_query_expansion", nn_idx)(ptr, col, val, nn_idx, k2)


def rerank_jaccard(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
    """Final re-ranked distances ``[Qb, G]`` float32 of a block of query rows; see
    :func:`ptl_ext.reference.rerank_jaccard`."""
    impl = _rerank_impl("rerank_jaccard", dist)
    return impl(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, float(lambda_value))


def reid_rank_stats(distmat, q_pids, g_pids, q_camids, g_camids):
    """Per-query ``(first [Q] int64, ap [Q] float64, inp [Q] float64)`` of the Market protocol from
    ``distmat [Q, G]`` float32/float64; see :func:`ptl_ext.reference.reid_rank_stats`."""
    return _rerank_impl("reid_rank_stats", distmat)(distmat, q_pids, g_pids, q_camids, g_camids)


if HAS_C:

    def _csr_fake(rows, like_index, like_value):
        nnz = torch.library.get_ctx().new_dynamic_size()
        return like_index.new_empty((rows + 1,)), like_index.new_empty((nnz,)), like_value.new_empty((nnz,))

    @torch.library.register_fake("ptl_ext::squared_euclidean")
    def _squared_euclidean_fake(a, b, norm_a, norm_b):
        return a.new_empty((a.shape[0], b.shape[0]))

    @torch.library.register_fake("ptl_ext::rerank_knn")
    def _rerank_knn_fake(feats, norms, k, block):
        n = feats.shape[0]
        return feats.new_empty((n, k)), feats.new_empty((n, k), dtype=torch.int64), feats.new_empty((n,))

    @torch.library.register_fake("ptl_ext::rerank_sparse_v")
    def _rerank_sparse_v_fake(feats, rowmax, nn_idx, k1, k_half):
        return _csr_fake(feats.shape[0], nn_idx, feats)

    @torch.library.register_fake("ptl_ext::rerank_query_expansion")
    def _rerank_query_expansion_fake(ptr, col, val, nn_idx, k2):
        return _csr_fake(nn_idx.shape[0], nn_idx, val)

    @torch.library.register_fake("ptl_ext::rerank_jaccard")
    def _rerank_jaccard_fake(dist, rowmax, ptr, col, val, row_start, inv_ptr, inv_row, inv_val, lambda_value):
        return torch.empty_like(dist, memory_format=torch.contiguous_format)

    @torch.library.register_fake("ptl_ext::reid_rank_stats")
    def _reid_rank_stats_fake(distmat, q_pids, g_pids, q_camids, g_camids):
        q = distmat.shape[0]
        return q_pids.new_empty((q,)), distmat.new_empty((q,), dtype=torch.float64), distmat.new_empty((q,), dtype=torch.float64)
