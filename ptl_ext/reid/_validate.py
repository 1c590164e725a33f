"""Input checks of the ReID evaluator (matrices, features, ids): every failure names the argument.

The generic checks (integers, numbers, choices) are :mod:`ptl_ext._checks`.
"""

import numpy as np
import torch

from .. import _checks, _torch_kernels


def as_tensor(x, name):
    """``x`` (a tensor or a numpy array) as a tensor; numpy arrays are wrapped without a copy."""
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got a numpy array of dtype {x.dtype}")
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")


def matrix(x, name, rows_name="rows"):
    """A non-empty 2-D floating matrix without NaN/inf, detached; float16/bfloat16 become float32."""
    t = as_tensor(x, name).detach()
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D [{rows_name}, D] matrix, got shape {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {t.dtype}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
    if t.dtype not in (torch.float32, torch.float64):
        t = t.float()
    low, high = torch.aminmax(t)  # NaN propagates into both
    if not bool(torch.isfinite(low) & torch.isfinite(high)):
        raise ValueError(f"{name} contains NaN or inf values")
    return t


def feature_pair(qf, gf, compute_dtype=None):
    """Query and gallery features ``[Q, D]``, ``[G, D]`` checked to share D, device and dtype.

    Distances are computed in ``compute_dtype`` (default: the features' common dtype); rows whose squared
    norm exceeds a quarter of that dtype's largest value are refused, so that every squared norm and
    distance (``|q|² + |g|² - 2 q·g``, at most twice the sum of the norms) stays finite.
    """
    qf = matrix(qf, "qf", "Q")
    gf = matrix(gf, "gf", "G")
    if qf.shape[1] != gf.shape[1]:
        raise ValueError(f"qf and gf must have the same feature size, got {qf.shape[1]} and {gf.shape[1]}")
    if qf.device != gf.device:
        raise ValueError(f"qf and gf must be on the same device, got {qf.device} and {gf.device}")
    if qf.dtype != gf.dtype:
        dtype = torch.promote_types(qf.dtype, gf.dtype)
        qf, gf = qf.to(dtype), gf.to(dtype)
    limit = torch.finfo(compute_dtype or qf.dtype).max / 4
    for name, t in (("qf", qf), ("gf", gf)):
        largest = float(torch.linalg.vector_norm(t, dim=1).square_().max())
        if not largest <= limit:
            raise ValueError(
                f"{name} has rows whose squared L2 norm ({largest:.3g}) overflows {compute_dtype or qf.dtype}: "
                f"distances need squared norms <= {limit:.3g}; scale the features down"
            )
    return qf, gf


def ids(x, name, n, length_name, device):
    """A 1-D integer id vector of length ``n`` as int64 on ``device``."""
    t = as_tensor(x, name)
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {t.dtype}")
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} entries but there are {n} {length_name}")
    if t.dtype == torch.uint64 and n and int(t.cpu().numpy().max()) > torch.iinfo(torch.int64).max:
        raise ValueError(f"{name} holds ids above 2^63 - 1, which would wrap around in int64 (to -1: junk)")
    return t.to(device=device, dtype=torch.int64)


BLOCK_ENTRIES = _torch_kernels.BLOCK_ENTRIES  # entries of one block of a query x gallery result


def block_rows(block_rows, columns, budget=BLOCK_ENTRIES):
    """Rows per block: ``block_rows`` if given, else enough for ``budget`` entries of ``columns`` each."""
    if block_rows is None:
        return max(1, budget // max(1, columns))
    return _checks.positive_int(block_rows, "block_rows")
