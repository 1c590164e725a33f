"""Timing of exact re-ranking at benchmark scale on one device, for the GPU check script.

``scripts/gpu_validate.py`` can call ``ptl_ext.reid.timing.time_rerank("cuda")`` in one line; the CPU
benchmarks with ratios and peak memory are benchmarks/bench_eval.py.
"""

import time

import torch

from .distance import squared_norms
from .knn import knn_search
from .rerank import re_ranking
from .screen import SCREENED_FORMAT, search_format

SCALES = {"market": (3368, 15913), "msmt": (11659, 82161)}


def synthetic_features(scale, device, dim=2048, seed=0):
    """``(qf, gf)`` float32 on ``device``: the clustered features of benchmarks/bench_eval.py (751 centres,
    noise 3.5) at ``scale`` (``"market"`` or ``"msmt"``)."""
    num_q, num_g = SCALES[scale]
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(751, dim, generator=gen)
    qf = centres[torch.randint(0, 751, (num_q,), generator=gen)].add_(torch.randn(num_q, dim, generator=gen), alpha=3.5)
    gf = centres[torch.randint(0, 751, (num_g,), generator=gen)].add_(torch.randn(num_g, dim, generator=gen), alpha=3.5)
    return qf.to(device), gf.to(device)


def _seconds(fn, device, repeats):
    fn()  # warm-up (CUDA context, cuBLAS handles, the CPU format measurement)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2], out


def time_rerank(device="cuda", scale="market", repeats=3):
    """Median seconds of ``re_ranking`` with the device's screened search (float16 on CUDA, bfloat16 on
    CPU: :data:`ptl_ext.reid.screen.SCREENED_FORMAT`) and with ``search="float32"`` on ``device`` at
    ``scale``, the screening format, the format ``search="auto"`` picks there, the fraction of rows that
    fell back to the float64 screen, and the largest difference between the two results (both exact; the
    float32 search's row maxima come from GEMM distances, so they differ in the last bits). Returns a dict."""
    device = torch.device(device)
    fmt = SCREENED_FORMAT[device.type]
    qf, gf = synthetic_features(scale, device)
    new_s, new = _seconds(lambda: re_ranking(qf, gf, search=fmt), device, repeats)
    old_s, old = _seconds(lambda: re_ranking(qf, gf, search="float32"), device, repeats)
    x = torch.cat([qf, gf])
    info = knn_search(x, squared_norms(x), 21, search=fmt)[3]
    return {
        "device": str(device),
        "scale": scale,
        "format": fmt,
        "default_format": search_format(device),
        "screened_s": new_s,
        "float32_s": old_s,
        "ratio": new_s / old_s,
        "fallback_fraction": info["fallback_fraction"],
        "max_abs_diff": float((new - old).abs().max()),
    }
