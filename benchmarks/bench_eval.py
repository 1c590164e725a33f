"""ReID evaluator at Market-1501 and MSMT17 scale: evaluation, exact re-ranking, peak memory.

    python -m pytest benchmarks/bench_eval.py                        # Market scale (a few minutes)
    PTL_BENCH_MSMT=1 python -m pytest benchmarks/bench_eval.py -k msmt   # MSMT17 scale (many minutes)

Features are synthetic and clustered: 751 Gaussian centres in 2048-d, per-image noise sigma = 3.5
(rank-1 ~ 84 %, mAP ~ 35 % without re-ranking), random cameras 0..5.

Groups (the candidate's speed-up over the others is printed at the end):
- ``eval market``: ``evaluate_features`` vs a torchreid-style evaluation (one addmm for the distances,
  then the per-query numpy loop of tests/reid/textbook.py);
- ``rerank market``: ``re_ranking`` as configured by default (the note names the search format the machine
  chose) vs ``re_ranking`` with the screened search (exact; bfloat16 on CPU, float16 on CUDA) and with the
  unscreened float32 search (the CUDA default; the note names each device's default), the float32
  all-pairs GEMM of the Q + G features (one ``mm``, the floor of any float32 search) and the dense textbook
  algorithm (N x N float32 matrices, as the original code; it cannot run at MSMT17 scale on 24 GiB);
- ``knn market``: the neighbour search alone, screened vs float32 (the note gives the screening format
  and the fraction of rows that fell back to the float64 screen);
- ``... msmt`` (opt-in, PTL_BENCH_MSMT=1): evaluation and re-ranking, candidate only;
- ``... cuda`` rows when a GPU is present.
Notes give peak RSS of the call (CPU; the process's VmHWM, reset before the call, so it includes the
features) or ``torch.cuda.max_memory_allocated`` (CUDA), and the metrics as a sanity check.
"""

import importlib.util
import os
import pathlib

import numpy as np
import pytest
import torch

from ptl_ext import ops
from ptl_ext.reid import evaluate_features, re_ranking, screen
from ptl_ext.reid.distance import squared_norms

_spec = importlib.util.spec_from_file_location(
    "reid_textbook", pathlib.Path(__file__).parents[1] / "tests" / "reid" / "textbook.py"
)
textbook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(textbook)

SCALES = {"market": (3368, 15913), "msmt": (11659, 82161)}
RUN_MSMT = os.environ.get("PTL_BENCH_MSMT", "0") == "1"
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
_data = {}
_results = {}


def _problem(scale):
    """Clustered features and ids at ``scale``, cached per session (CPU tensors)."""
    if scale not in _data:
        num_q, num_g = SCALES[scale]
        gen = torch.Generator().manual_seed(0)
        centres = torch.randn(751, 2048, generator=gen)
        q_pids = torch.randint(0, 751, (num_q,), generator=gen)
        g_pids = torch.randint(0, 751, (num_g,), generator=gen)
        qf = centres[q_pids].add_(torch.randn(num_q, 2048, generator=gen), alpha=3.5)
        gf = centres[g_pids].add_(torch.randn(num_g, 2048, generator=gen), alpha=3.5)
        q_camids = torch.randint(0, 6, (num_q,), generator=gen)
        g_camids = torch.randint(0, 6, (num_g,), generator=gen)
        _data[scale] = dict(qf=qf, gf=gf, q_pids=q_pids, g_pids=g_pids, q_camids=q_camids, g_camids=g_camids)
    return _data[scale]


def _on(problem, device):
    return {k: v.to(device) for k, v in problem.items()}


def _reset_peak(device):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM, the peak resident set size


def _peak(device):
    if device == "cuda":
        torch.cuda.synchronize()
        return f"max allocated {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    with open("/proc/self/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return f"peak RSS {kib / 2**20:.2f} GiB"


def _run(benchmark, fn, device, rounds):
    """Benchmark ``fn`` and return its result; the note gets the peak memory over the calls."""

    def call():
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return result

    _reset_peak(device)
    out = benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=1 if device == "cuda" else 0)
    benchmark.extra_info["note"] = _peak(device)
    return out


def _metrics(res):
    return f"rank-1 {100 * res.cmc[0]:.1f} %, mAP {100 * res.mAP:.1f} %"


def _scales():
    return [
        pytest.param("market"),
        pytest.param("msmt", marks=pytest.mark.skipif(not RUN_MSMT, reason="PTL_BENCH_MSMT=1")),
    ]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", _scales())
def test_eval(benchmark, scale, device):
    p = _on(_problem(scale), device)
    benchmark.group = f"eval {scale} {device}"
    benchmark.extra_info.update(impl="evaluate_features", candidate=True)
    res = _run(benchmark, lambda: evaluate_features(**p, normalize=False), device, rounds=3 if scale == "market" else 1)
    benchmark.extra_info["note"] += f"; {_metrics(res)}"


def test_eval_textbook(benchmark):
    p = _problem("market")
    benchmark.group = "eval market cpu"
    benchmark.extra_info.update(impl="torch addmm + per-query numpy loop")

    def run():
        qf, gf = p["qf"], p["gf"]
        dist = torch.addmm(qf.pow(2).sum(1, keepdim=True) + gf.pow(2).sum(1), qf, gf.T, alpha=-2).numpy()
        ids = [p[k].numpy() for k in ("q_pids", "g_pids", "q_camids", "g_camids")]
        return textbook.evaluate_market(dist, *ids, max_rank=50)

    cmc, mAP, _, _ = _run(benchmark, run, "cpu", rounds=1)
    benchmark.extra_info["note"] += f"; rank-1 {100 * cmc[0]:.1f} %, mAP {100 * mAP:.1f} %"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", _scales())
def test_rerank(benchmark, scale, device):
    p = _on(_problem(scale), device)
    benchmark.group = f"rerank {scale} {device}"
    benchmark.extra_info.update(impl="re_ranking (sparse, exact)", candidate=True)
    if scale == "msmt":  # the Q x G result alone is 3.6 GiB: evaluate it by blocks instead of keeping it
        res = _run(benchmark, lambda: evaluate_features(**p, normalize=False, rerank=True), device, rounds=1)
        benchmark.extra_info["impl"] = "evaluate_features(rerank=True)"
        benchmark.extra_info["note"] += f"; {_metrics(res)}"
        return
    out = _run(benchmark, lambda: re_ranking(p["qf"], p["gf"]), device, rounds=2 if device == "cpu" else 5)
    benchmark.extra_info["note"] += f"; search {screen.search_format(device)}"
    _results[device] = out.cpu()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("search", ["screened", "float32"])
def test_rerank_search(benchmark, device, search):
    p = _on(_problem("market"), device)
    fmt = screen.SCREENED_FORMAT[device] if search == "screened" else "float32"
    benchmark.group = f"rerank market {device}"
    benchmark.extra_info.update(impl=f're_ranking(search="{fmt}")')
    _run(benchmark, lambda: re_ranking(p["qf"], p["gf"], search=fmt), device, rounds=2 if device == "cpu" else 5)
    benchmark.extra_info["note"] += f"; default search on {device}: {screen.search_format(device)}"


@pytest.mark.parametrize("device", DEVICES)
def test_allpairs_gemm(benchmark, device):
    p = _on(_problem("market"), device)
    x = torch.cat([p["qf"], p["gf"]])
    benchmark.group = f"rerank market {device}"
    benchmark.extra_info.update(impl="float32 all-pairs GEMM (Q+G)^2 x 2048, one mm")
    _run(benchmark, lambda: torch.mm(x, x.T), device, rounds=2 if device == "cpu" else 5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("search", ["screened", "float32"])
def test_knn(benchmark, device, search):
    p = _on(_problem("market"), device)
    x = torch.cat([p["qf"], p["gf"]])
    benchmark.group = f"knn market {device}"
    if search == "float32":
        benchmark.extra_info.update(impl="ops.rerank_knn (float32, symmetric blocked GEMM)")
        _run(benchmark, lambda: ops.rerank_knn(x, squared_norms(x), 21, 2048), device, rounds=2)
        return
    fmt = screen.SCREENED_FORMAT[device]
    benchmark.extra_info.update(impl=f"screen.screened_knn ({fmt} screen, exact re-check)", candidate=True)
    stats = _run(benchmark, lambda: screen.screened_knn(x, 21, fmt)[3], device, rounds=2)
    benchmark.extra_info["note"] += f"; fallback rows {stats.fallback_fraction:.4f}"


def test_rerank_msmt_full_matrix(benchmark):
    """MSMT17-scale ``re_ranking`` returning the whole Q x G matrix (peak RSS includes its 3.6 GiB)."""
    if not RUN_MSMT:
        pytest.skip("PTL_BENCH_MSMT=1")
    p = _problem("msmt")
    benchmark.group = "rerank msmt cpu (full matrix)"
    benchmark.extra_info.update(impl="re_ranking", candidate=True)
    _run(benchmark, lambda: re_ranking(p["qf"], p["gf"]), "cpu", rounds=1)


def test_rerank_textbook(benchmark):
    p = _problem("market")
    benchmark.group = "rerank market cpu"
    benchmark.extra_info.update(impl="dense textbook (numpy, N x N)")
    dense = _run(
        benchmark,
        lambda: textbook.re_ranking(p["qf"].numpy(), p["gf"].numpy(), 20, 6, 0.3, exact=False),
        "cpu",
        rounds=1,
    )
    if "cpu" in _results:
        diff = np.abs(_results["cpu"].numpy() - dense).max()
        benchmark.extra_info["note"] += f"; max |sparse - dense| {diff:.1e}"
