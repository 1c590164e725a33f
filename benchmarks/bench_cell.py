"""Fused BConv-Cell update vs the eager and the torch.compile'd reference, forward and forward+backward.

    python -m pytest benchmarks/bench_cell.py

CPU rows always (float32); CUDA rows (float32, bfloat16, and the device copy bandwidth the fused op
is measured against) when a GPU is present. The summary at the end gives the fused op's speed-up.
"""

import pytest
import torch

from ptl_ext import ops, reference

SIZES = [(32, 64, 64, 32), (32, 128, 32, 16), (32, 256, 16, 8)]
IMPLS = ["fused", "eager", "compiled"]
CASES = [("cpu", torch.float32)]
if torch.cuda.is_available():
    CASES += [("cuda", torch.float32), ("cuda", torch.bfloat16)]

_compiled = {}


def _update_fn(impl):
    if impl == "fused":
        return ops.bconv_cell_update
    if impl == "eager":
        return reference.bconv_cell_update
    if "fn" not in _compiled:
        _compiled["fn"] = torch.compile(reference.bconv_cell_update, fullgraph=True)
    return _compiled["fn"]


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


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

    def run():
        with torch.set_grad_enabled(backward):
            y, c = fn(gates, c_prev)
            out = torch.autograd.grad((y, c), (gates, c_prev), (dy, dc)) if backward else (y, c)
        _sync(device)
        return out

    for _ in range(3):
        run()
    benchmark.group = _label(size, device, dtype, mode)
    benchmark.extra_info.update(impl=impl, candidate=impl == "fused", bytes=_bytes_moved(size, dtype, backward))
    out = benchmark(run)
    if not backward:
        want = reference.bconv_cell_update(gates.float(), c_prev.float())
        tol = dict(rtol=2e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=1e-4, atol=1e-5)
        for got, ref in zip(out, want):
            torch.testing.assert_close(got.float(), ref, **tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_cuda_copy_bandwidth(benchmark, size):
    """The ceiling: a device-to-device copy of as many bytes as the fused forward moves."""
    n = _bytes_moved(size, torch.float32, False) // 2 // 4
    src = torch.randn(n, device="cuda")
    dst = torch.empty_like(src)

    def run():
        dst.copy_(src)
        torch.cuda.synchronize()

    benchmark.group = f"cuda copy {size}"
    benchmark.extra_info.update(impl="copy", bytes=2 * n * 4)
    benchmark(run)
    median = benchmark.stats.stats.median
    benchmark.extra_info["note"] = f"{2 * n * 4 / median / 1e9:.0f} GB/s"
