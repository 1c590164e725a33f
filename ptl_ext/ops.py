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


def bconv_cell_update(gates, c_prev=None):
    """Fused BConv-Cell update: ``(y, c)`` from gate pre-activations and the previous state.

    Args:
        gates: ``[B, 4K, H, W]`` float32/float64/bfloat16 (CUDA also float16), any strides;
            channel chunks in order i, f, o, g.
        c_prev: ``[B, K, H, W]`` of the same dtype and device, or ``None`` for a zero state.

    Returns:
        ``(y, c)``, contiguous ``[B, K, H, W]`` tensors; differentiable in ``gates`` and ``c_prev``.
    """
    if not HAS_C:
        _warn_fallback()
        return reference.bconv_cell_update(gates, c_prev)
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
        ctx.has_c_prev = c_prev is not None
        ctx.save_for_backward(gates, c_prev, c)

    def _backward(ctx, grad_y, grad_c):
        gates, c_prev, c = ctx.saved_tensors
        need_grad_c_prev = ctx.has_c_prev and ctx.needs_input_grad[1]
        grad_gates, grad_c_prev = torch.ops.ptl_ext.bconv_cell_update_backward.default(
            gates, c_prev, c, grad_y, grad_c, need_grad_c_prev
        )
        return grad_gates, (grad_c_prev if need_grad_c_prev else None)

    torch.library.register_autograd("ptl_ext::bconv_cell_update", _backward, setup_context=_setup_context)
