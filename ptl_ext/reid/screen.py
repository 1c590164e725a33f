"""Exact nearest neighbours from a low-precision GEMM: screening with a proven error bound.

The k-reciprocal graph needs, per feature, its ``k`` nearest (self included) and its largest distance, not
every distance exactly. A GEMM in a low-precision format (bfloat16 or float16, float32 accumulation)
estimates every squared distance within a bound ``eps`` derived in docs/rerank_bound.md; every feature whose
estimate could put it among the ``k`` nearest (or at the largest distance) is kept as a candidate, and the
candidates are re-measured exactly (:func:`ptl_ext.ops.rerank_refine`: float differences summed in double,
ties by index). The result equals an exhaustive exact search, whatever the features: a row whose candidate
list would not fit in the screened columns falls back to a float64 screen, whose candidate list is unbounded.

The features are translated by their (rounded) mean and scaled by a power of two first: distances do not
change under translation, and the bound, proportional to the norms of what the GEMM sees, shrinks from
the norms of the raw features to their spread (features far from the origin stay exact).

Everything is torch on the features' device (CPU or CUDA, the same code), apart from the CPU kernel of the
exact re-measurement; no host synchronisation per block except the count of fallback rows.
"""

import functools
import math

import torch

from .. import ops
from .._torch_kernels import BLOCK_ENTRIES

# Unit roundoff of each format's stored inputs and outputs (round to nearest).
_UNIT = {torch.bfloat16: 2.0**-8, torch.float16: 2.0**-11, torch.float32: 2.0**-24, torch.float64: 2.0**-53}
# Accumulators: float32 (float64 for a float64 screen); each addition may err by twice the unit roundoff
# (covers accumulators that truncate, as some matrix units do).
_ACC_UNIT = {torch.bfloat16: 2.0**-23, torch.float16: 2.0**-23, torch.float32: 2.0**-23, torch.float64: 2.0**-52}
_FLUSH = 2.0**-126  # float32 values below this may be flushed to zero by bf16 dot-product instructions
SLACK = 2.0**-30  # relative margin for the rounding of the bound's own arithmetic and of the exact re-check
SEARCH_FORMATS = ("auto", "bfloat16", "float16", "float32")


class ScreenStats:
    """What a screened search did: the format and how many rows fell back to the float64 screen."""

    def __init__(self, fmt, rows):
        self.format, self.rows, self.fallback_rows = fmt, rows, 0

    @property
    def fallback_fraction(self):
        """Fraction of rows whose candidates came from the float64 screen."""
        return self.fallback_rows / max(1, self.rows)


def _cpu_flags():
    """The CPU feature flags the kernel reports (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


@functools.cache
def cpu_search_format():
    """The screening format for CPU features on this machine: ``"bfloat16"`` where the CPU has AMX tiles
    for bfloat16 (``amx_bf16``: oneDNN's bfloat16 GEMM then runs many times faster than float32), else
    ``"float32"`` (the exact float32 search, no screening).

    The screen computes all N x N estimates, twice the multiply-adds of the symmetric float32 search, then
    selects from them: on the AVX512-BF16 (no AMX) EPYC of BENCHMARKS.md, whose bfloat16 GEMM measured
    2-6x float32, it broke even at Market scale, so there float32 stays the default. The rule is fixed by
    the CPU (not timed at run time) so that a machine always returns the same bits.
    """
    return "bfloat16" if "amx_bf16" in _cpu_flags() else "float32"


# The screened format for each device type when one is asked for by kind rather than by name (timing,
# benchmarks): float16 on CUDA (features are scaled into its range; its 11-bit significand gives a
# tighter bound than bfloat16), bfloat16 on CPU (the format of AMX and AVX512-BF16).
SCREENED_FORMAT = {"cuda": "float16", "cpu": "bfloat16"}


def search_format(device, requested="auto"):
    """The search format name for features on ``device``: ``requested`` unless ``"auto"``; auto is
    ``"float32"`` (the exact float32 search, no screening) on CUDA and :func:`cpu_search_format` on CPU.

    On CUDA the float32 GEMM is fast enough that the screen's extra work does not pay: on an H200 at
    Market scale the float16 screen took 0.31 s against 0.09 s for the float32 search."""
    if requested != "auto":
        return requested
    return "float32" if torch.device(device).type == "cuda" else cpu_search_format()


def _low_mm(a, b, fmt):
    """``a @ b.T`` of ``fmt`` matrices with float32 accumulation; float32 output where the device offers it
    (returns the output and the unit roundoff of its rounding)."""
    if fmt in (torch.float32, torch.float64):
        return torch.mm(a, b.T), 0.0
    if a.device.type == "cuda":
        try:
            return torch.mm(a, b.T, out_dtype=torch.float32), 0.0
        except (RuntimeError, TypeError):
            pass
    return torch.mm(a, b.T), _UNIT[fmt] / 2  # output rounded to nearest in fmt


def _parts(value, fmt):
    """Three ``fmt`` tensors summing to ``value`` (float64) up to the returned residue ``|value - sum|``."""
    parts, rest = [], value.clone()
    for _ in range(3):
        parts.append(rest.to(fmt, copy=True))
        rest -= parts[-1].double()
    return parts, rest.abs()


class _Screen:
    """The augmented low-precision matrices of one search and the per-row terms of its error bound.

    ``A_i = [-2 y_i, p_i, 1, 1, 1, -o_i]`` and ``B_j = [y_j, 1, 1, 1, p_j, 1, 1, 1]``, with ``y`` the centred,
    scaled features rounded to ``fmt``, ``p_i`` three ``fmt`` numbers summing to ``|y_i|^2`` and ``o_i`` three
    summing to the row's offset (its mean estimated distance), so that ``A_i . B_j = |y_i - y_j|^2 - offset_i``:
    the output rounding acts on the distance's departure from the row's typical distance. ``err [N]`` bounds
    ``|y_i - x'_i|`` (``x'`` the exactly translated and scaled feature) and ``acc [N]`` the accumulation
    error's share of row i (docs/rerank_bound.md).
    """

    def __init__(self, feats, fmt, block):
        n, dim = feats.shape
        self.fmt = fmt
        f64 = dict(dtype=torch.float64, device=feats.device)
        wide = torch.float64 if fmt == torch.float64 else torch.float32  # the format z below is computed in
        centre = (sum(feats[r0 : r0 + block].sum(0, dtype=torch.float64) for r0 in range(0, n, block)) / n).to(wide)
        spread = max(
            float(torch.linalg.vector_norm(feats[r0 : r0 + block].to(wide) - centre, dim=1).max())
            for r0 in range(0, n, block)
        )
        self.scale = 2.0 ** -math.ceil(math.log2(spread * (1 + 2.0**-10))) if spread > 0 else 1.0
        unit = _UNIT[wide]
        width = dim + 9 + (-(dim + 9)) % 8
        self.a = torch.zeros((n, width), dtype=fmt, device=feats.device)
        self.b = torch.zeros((n, width), dtype=fmt, device=feats.device)
        self.a[:, dim + 3 : dim + 6] = 1.0
        self.b[:, dim : dim + 3] = 1.0
        self.b[:, dim + 6 : dim + 9] = 1.0
        err, sq = torch.empty(n, **f64), torch.empty(n, **f64)
        y_sum = torch.zeros(dim, **f64)
        for r0 in range(0, n, block):
            rows = slice(r0, r0 + block)
            # z = fl(x - c) s is within `unit` |x'| of x' = (x - c) s elementwise (s a power of two)
            z = (feats[rows].to(wide) - centre).mul_(self.scale)
            y = z.to(fmt)
            if fmt == torch.bfloat16:
                y = y.masked_fill(y.abs() < _FLUSH, 0.0)  # what a flushing dot-product instruction reads
            # z - y is exact in z's format (y is z rounded, or 0); its norm errs by at most dim * unit
            gap = torch.linalg.vector_norm(z - y.to(wide), dim=1, dtype=torch.float64) * (1 + 2 * dim * unit)
            zn = torch.linalg.vector_norm(z, dim=1, dtype=torch.float64) * (1 + 2 * dim * unit)
            err[rows] = gap + unit * zn * (1 + 2 * unit)
            sq[rows] = torch.linalg.vector_norm(y, dim=1, dtype=torch.float64).square()
            y_sum += y.sum(0, dtype=torch.float64)
            self.a[rows, :dim] = y * -2.0  # exact: a power of two
            self.b[rows, :dim] = y
        parts, res = _parts(sq, fmt)
        for t, part in enumerate(parts):
            self.a[:, dim + t] = part
            self.b[:, dim + 3 + t] = part
        # the norms' own rounding in double is far below the slack added to the bound terms
        y_mean = (y_sum / n).to(wide)
        typical = torch.empty(n, **f64)
        for r0 in range(0, n, block):
            typical[r0 : r0 + block] = (self.b[r0 : r0 + block, :dim].to(wide) @ y_mean).double()
        parts, _ = _parts(sq + float(sq.mean()) - 2.0 * typical, fmt)
        self.offset = sum(part.double() for part in parts)  # exactly what the GEMM subtracts
        for t, part in enumerate(parts):
            self.a[:, dim + 6 + t] = -part
        terms = width + 9
        acc = _ACC_UNIT[fmt] * terms
        gamma = acc / (1.0 - acc)
        # sum |terms of A_i . B_j| <= 2|y_i||y_j| + (1 + 2^-7)(|y_i|^2 + |y_j|^2 + |o_i|)
        #                          <= 3.01 (|y_i|^2 + |y_j|^2) + 1.01 |o_i|
        self.acc = (gamma * (3.01 * sq + 1.01 * self.offset.abs()) + res + 2.0**-40 * sq) * (1 + SLACK)
        self.acc_max = float(self.acc.max()) + (2.0 * terms * _FLUSH if fmt == torch.bfloat16 else 0.0)
        self.err = err * (1 + SLACK)
        self.err_max = float(self.err.max())

    def estimate(self, r0, r1):
        """``([r1 - r0, N] float32 or ``fmt`` estimates of the scaled squared distances minus the rows' offsets, output
        roundoff)``."""
        return _low_mm(self.a[r0:r1], self.b, self.fmt)


def _solve_below(v, rho):
    """The largest ``t`` with ``t - rho |t| <= v`` (float64 tensors)."""
    return torch.where(v >= 0, v / (1 - rho), v / (1 + rho))


def _solve_above(z, rho):
    """The smallest ``t`` with ``t + rho |t| >= z``."""
    return torch.where(z >= 0, z / (1 + rho), z / (1 - rho))


def _thresholds(kth, big, offset, acc, err, rho):
    """Per-row screening thresholds (float64 ``[R]``, in the GEMM output's terms) from the k-th smallest
    output ``kth`` and the largest ``big`` of each row: every feature whose exact distance could be at most
    the k-th smallest exact one has an output ``<= near``; every one that could be the farthest has an output
    ``>= far`` (``far`` is ``nan`` when nothing can be excluded). ``offset``: what the rows' outputs are
    relative to; ``acc``, ``err``: the rows' bound terms (with the other side's maxima added); ``rho``: the
    output roundoff. See docs/rerank_bound.md."""
    hi = kth + offset + rho * kth.abs() + acc  # upper bound of |y_i - y_j|^2 for the k-th smallest output
    top = (hi.clamp(min=0).sqrt() + err).square() * (1 + SLACK)  # >= the k-th smallest exact distance
    bound = (top.sqrt() + err).square() * (1 + SLACK)  # |y_i - y_j|^2 of any feature within `top`
    near = _solve_below(bound - offset + acc, rho) + SLACK * (bound + offset.abs())
    lo = (big + offset - rho * big.abs() - acc).clamp(min=0)  # lower bound of the largest |y_i - y_j|^2
    floor = (lo.sqrt() - err).clamp(min=0).square() * (1 - SLACK)  # <= the largest exact distance
    reach = (floor.sqrt() - err).clamp(min=0).square() * (1 - SLACK)  # |y_i - y_j|^2 of any candidate
    far = _solve_above(reach - offset - acc, rho) - SLACK * (reach + offset.abs())
    return near, torch.where(reach > 0, far, torch.nan)


def screened_knn(feats, k, fmt="bfloat16", block=None, far_count=32, extra=None):
    """Exact k nearest neighbours and row maxima of ``feats`` from a low-precision screen.

    Args:
        feats: ``[N, D]`` float32 features (CPU or CUDA); k: neighbours per row, self included (``1 <= k <= N``).
        fmt: screening format, ``"bfloat16"``, ``"float16"`` or ``"float32"``; block: rows per GEMM block
            (default: about 2^24 estimates); far_count: screened candidates for each row's maximum;
            extra: screened candidates beyond ``k`` (default ``k + 160``).

    Returns:
        ``(dist [N, k] float32, idx [N, k] int64, rowmax [N] float32, stats)``: as
        :func:`ptl_ext.ops.rerank_knn` (neighbours sorted by exact squared distance, then index; the largest
        exact squared distance of each row) and a :class:`ScreenStats`.
    """
    n = feats.shape[0]
    dtype = getattr(torch, fmt)
    block = block or max(1, BLOCK_ENTRIES // max(1, n))
    stats = ScreenStats(fmt, n)
    screen = _Screen(feats, dtype, block)
    width = min(n, k + (k + 160 if extra is None else extra))
    far_width = min(n, far_count)
    dist = feats.new_empty((n, k))
    idx = torch.empty((n, k), dtype=torch.int64, device=feats.device)
    rowmax = feats.new_empty((n,))
    fallback = []
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        est, rho = screen.estimate(r0, r1)
        small, cand, large, far_cand = ops.rerank_screen_select(est, width, far_width)
        del est
        small64, large64 = small.double(), large.double()
        near, far = _thresholds(
            small64[:, k - 1],
            large64[:, 0],
            screen.offset[r0:r1],
            screen.acc[r0:r1] + screen.acc_max,
            screen.err[r0:r1] + screen.err_max,
            rho,
        )
        count = (small64 <= near[:, None]).sum(1)
        far_n = torch.where(far.isnan(), far_width, (large64 >= far[:, None]).sum(1))
        ok = (count < width) | (width == n)
        ok &= (far_n < far_width) | (far_width == n)
        rows = torch.arange(r0, r1, device=feats.device)
        d, i, _ = ops.rerank_refine(feats, rows, cand, count.clamp(min=k), k)
        _, _, mx = ops.rerank_refine(feats, rows, far_cand, far_n.clamp(min=1), 1)
        dist[r0:r1], idx[r0:r1], rowmax[r0:r1] = d, i, mx
        fallback.append(rows[~ok])
    fallback = torch.cat(fallback)
    stats.fallback_rows = int(fallback.numel())
    if stats.fallback_rows:
        _exact_rows(feats, fallback, k, dist, idx, rowmax)
    return dist, idx, rowmax, stats


def _exact_rows(feats, rows, k, dist, idx, rowmax):
    """Exact neighbours and maxima of ``rows``: every feature a candidate when they are few (the exact
    re-check of all N), else the float64 screen (estimates within ~1e-13 of the norms, candidate lists of
    any length)."""
    n = feats.shape[0]
    if rows.numel() * 64 <= n:
        step = max(1, BLOCK_ENTRIES // 4 // max(1, n))
        for s in range(0, rows.numel(), step):
            part = rows[s : s + step]
            everyone = torch.arange(n, device=feats.device).expand(part.numel(), n).contiguous()
            count = torch.full((part.numel(),), n, dtype=torch.int64, device=feats.device)
            dist[part], idx[part], rowmax[part] = ops.rerank_refine(feats, part, everyone, count, k)
        return
    screen = _Screen(feats, torch.float64, max(1, BLOCK_ENTRIES // 4 // max(1, n)))
    step = max(1, BLOCK_ENTRIES // 4 // max(1, n))
    for s in range(0, rows.numel(), step):
        part = rows[s : s + step]
        est = torch.mm(screen.a[part], screen.b.T)
        ordered, order = est.sort(1)
        near, far = _thresholds(
            ordered[:, k - 1],
            ordered[:, -1],
            screen.offset[part],
            screen.acc[part] + screen.acc_max,
            screen.err[part] + screen.err_max,
            0.0,
        )
        count = (ordered <= near[:, None]).sum(1)
        far_n = torch.where(far.isnan(), n, (ordered >= far[:, None]).sum(1))
        c = int(count.max())
        d, i, _ = ops.rerank_refine(feats, part, order[:, :c].contiguous(), count, k)
        c = int(far_n.max())
        _, _, mx = ops.rerank_refine(feats, part, order.flip(1)[:, :c].contiguous(), far_n, 1)
        dist[part], idx[part], rowmax[part] = d, i, mx
