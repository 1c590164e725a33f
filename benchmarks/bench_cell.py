"""Fused BConv-Cell update vs the eager and the torch.compile'd reference, forward and forward+backward.

    python -m pytest benchmarks/bench_cell.py

CPU rows always (float32); CUDA rows (float32, bfloat16, float16, and the device copy bandwidth the
fused op is measured against) when a GPU is present. The summary at the end gives the fused op's
speed-up.

CUDA timing: one round launches CALLS calls back to back and synchronises once, so launch overhead
overlaps the kernels instead of adding a host round trip to each 15-60 us call; CUDA events around
the calls give the device time per call (``gpu_us`` and the achieved GB/s in the notes).
"""

import pytest
import torch

from ptl_ext import ops, reference

SIZES = [(32, 64, 64, 32), (32, 128, 32, 16), (32, 256, 16, 8)]
IMPLS = ["fused", "eager", "compiled"]
CASES = [("cpu", torch.float32)]
if torch.cuda.is_available():
    CASES += [("cuda", torch.float32), ("cuda", torch.bfloat16), ("cuda", torch.float16)]
CALLS = 50  # calls per timed round on CUDA

_compiled = {}


def _update_fn(impl):
    if impl == "fused":
        return ops.bconv_cell_update
    if impl == "eager":
        return reference.bconv_cell_update
    if "fn" not in _compiled:
        _compiled["fn"] = torch.compile(reference.bconv_cell_update, fullgraph=True)
    return _compiled["fn"]


def _timed(call, device, benchmark, nbytes):
    """The function pytest-benchmark times: one call on the CPU; on CUDA, CALLS calls between two CUDA
    events with one synchronisation. Sets ``extra_info["calls"]`` (the summary divides by it) and, on
    CUDA, notes the median device time per call and the bandwidth it achieves."""
    if device != "cuda":
        benchmark.extra_info["calls"] = 1
        return call
    device_ms = []
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def run():
        start.record()
        for _ in range(CALLS):
            out = call()
        end.record()
        end.synchronize()
        device_ms.append(start.elapsed_time(end) / CALLS)
        return out

    def note():
        per_call = sorted(device_ms)[len(device_ms) // 2] * 1e-3
        benchmark.extra_info["gpu_us"] = round(per_call * 1e6, 2)
        benchmark.extra_info["note"] = f"device {per_call * 1e6:.1f} us/call, {nbytes / per_call / 1e9:.0f} GB/s"

    benchmark.extra_info["calls"] = CALLS
    run.note = note
    return run


def _inputs(size, device, dtype):
    b, k, h, w = size
    gen = torch.Generator().manual_seed(0)
    gates = torch.randn(b, 4 * k, h, w, generator=gen).to(device=device, dtype=dtype)
    c_prev = torch.randn(b, k, h, w, generator=gen).to(device=device, dtype=dtype)
    return gates, c_prev


def _bytes_moved(size, dtype, backward):
    """Fewest bytes through memory: forward reads gates + c_prev, writes y + c (7 state-sized tensors);
    backward adds re-reading gates, c_prev, c, dy, dc and writing dgates, dc_prev (13 more)."""
    b, k, h, w = size
    units = 7 + (13 if backward else 0)
    return units * b * k * h * w * torch.empty((), dtype=dtype).element_size()


def _label(size, device, dtype, mode):
    return f"{device} {str(dtype).removeprefix('torch.')} {mode} B,K,H,W={size}"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["forward", "forward+backward"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{str(c[1]).removeprefix('torch.')}")
def test_cell_update(benchmark, case, size, mode, impl):
    device, dtype = case
    backward = mode == "forward+backward"
    gates, c_prev = _inputs(size, device, dtype)
    gates.requires_grad_(backward)
    c_prev.requires_grad_(backward)
    dy, dc = torch.randn_like(c_prev), torch.randn_like(c_prev)
    fn = _update_fn(impl)

    def call():
        with torch.set_grad_enabled(backward):
            y, c = fn(gates, c_prev)
            return torch.autograd.grad((y, c), (gates, c_prev), (dy, dc)) if backward else (y, c)

    nbytes = _bytes_moved(size, dtype, backward)
    run = _timed(call, device, benchmark, nbytes)
    for _ in range(3):
        run()
    benchmark.group = _label(size, device, dtype, mode)
    benchmark.extra_info.update(impl=impl, candidate=impl == "fused", bytes=nbytes)
    out = benchmark(run)
    if hasattr(run, "note"):
        run.note()
    if not backward:
        want = reference.bconv_cell_update(gates.float(), c_prev.float())
        tol = {torch.bfloat16: dict(rtol=2e-2, atol=2e-2), torch.float16: dict(rtol=2e-3, atol=2e-3)}.get(
            dtype, dict(rtol=1e-4, atol=1e-5)
        )
        for got, ref in zip(out, want):
            torch.testing.assert_close(got.float(), ref, **tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.cuda
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_cuda_copy_bandwidth(benchmark, size):
    """The ceiling: a device-to-device copy of as many bytes as the fused forward moves."""
    n = _bytes_moved(size, torch.float32, False) // 2 // 4
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)
    run = _timed(lambda: dst.copy_(src), "cuda", benchmark, 2 * n * 4)
    run()
    benchmark.group = f"cuda copy {size}"
    benchmark.extra_info.update(impl="copy", bytes=2 * n * 4)
    benchmark(run)
    run.note()
