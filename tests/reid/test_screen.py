"""The screened neighbour search (low-precision GEMM + proven bound + exact re-check) equals an exhaustive
float64 search: same neighbours, same order, same distances, same row maxima, on random and adversarial
features; and re-ranking gives one answer whatever its blocks."""

import numpy as np
import pytest
import torch

from ptl_ext import ops
from ptl_ext.reid import re_ranking
from ptl_ext.reid.screen import screened_knn

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
FORMATS = ["bfloat16", "float16", "float32"]


def _reference(x, k):
    """Exhaustive search in float64: ``(dist [N, k], idx [N, k], rowmax [N])``, ties by index."""
    x64 = x.double()
    d = torch.stack([(row - x64).square().sum(1) for row in x64])  # explicit differences: no cancellation
    order = torch.sort(d, dim=1, stable=True).indices
    return d.gather(1, order[:, :k]), order[:, :k], d.amax(1)


def _check(x, k, fmt, device="cpu", near_ties=False, **kwargs):
    """Compare with :func:`_reference`. With ``near_ties``, features whose float64 distances differ by less
    than 1e-12 of the row maximum (where the order depends on how a double sum is rounded) may come in
    either order; exact ties must still come by index."""
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    dist, idx, rowmax, stats = screened_knn(x.to(device), k, fmt, **kwargs)
    want_d, want_i, want_max = _reference(x, k)
    idx = idx.cpu()
    if near_ties:
        x64 = x.double()
        got = torch.stack([(x64[i] - x64[idx[i]]).square().sum(1) for i in range(x.shape[0])])
        tol = 1e-12 * want_max[:, None]
        assert (got <= want_d[:, -1:] + tol).all()  # nothing beyond the k-th
        assert (got[:, 1:] >= got[:, :-1] - tol).all()  # ordered
        assert ((got[:, 1:] != got[:, :-1]) | (idx[:, 1:] > idx[:, :-1])).all()  # exact ties by index
        assert all(len(set(row.tolist())) == k for row in idx)
    else:
        assert torch.equal(idx, want_i)
    torch.testing.assert_close(dist.cpu().double(), want_d, rtol=2e-7, atol=0)
    torch.testing.assert_close(rowmax.cpu().double(), want_max, rtol=2e-7, atol=0)
    return stats


def _clustered(seed, n, dim, spread=0.3, offset=0.0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(max(1, n // 6), dim, generator=g)
    x = centres[torch.randint(0, centres.shape[0], (n,), generator=g)] + spread * torch.randn(n, dim, generator=g)
    return (x + offset).float()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("seed", range(6))
def test_random_problems(device, fmt, seed):
    g = torch.Generator().manual_seed(seed)
    n, dim = int(torch.randint(5, 120, (1,), generator=g)), int(torch.randint(1, 64, (1,), generator=g))
    k = int(torch.randint(1, min(n, 25) + 1, (1,), generator=g))
    _check(_clustered(seed, n, dim), k, fmt, device)


@pytest.mark.parametrize("dim", [1, 2, 3, 17, 512, 4096])
def test_feature_sizes(dim):
    _check(_clustered(dim, 40, dim), 7, "bfloat16")


@pytest.mark.parametrize("fmt", FORMATS)
def test_exact_ties(fmt):
    # integer lattice points: many equal distances, exactly representable; ties must break by index
    g = torch.Generator().manual_seed(1)
    x = torch.randint(-2, 3, (80, 3), generator=g).float()
    _check(x, 21, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_near_duplicates_and_duplicates(fmt):
    g = torch.Generator().manual_seed(2)
    base = torch.randn(10, 32, generator=g)
    x = base.repeat(6, 1) + 1e-6 * torch.randn(60, 32, generator=g)
    x[::7] = base[0]  # exact duplicates too
    _check(x.float(), 12, fmt, near_ties=True)


@pytest.mark.parametrize("scale", [1e-15, 1e-8, 1.0, 1e8, 1e15])
def test_huge_and_tiny_norms(scale):
    _check(_clustered(3, 50, 24) * scale, 9, "bfloat16")


@pytest.mark.parametrize("fmt", FORMATS)
def test_far_from_the_origin(fmt):
    # norms ~1e3, neighbours 1e-3 .. 0.5 apart: float32 |x|^2 + |y|^2 - 2 x.y without centring reorders them
    g = torch.Generator().manual_seed(4)
    centre = torch.randn(1, 64, generator=g) * 1e3 / 8
    steps = torch.logspace(-3, np.log10(0.5), 60)[:, None] * torch.nn.functional.normalize(
        torch.randn(60, 64, generator=g), dim=1
    )
    _check((centre + steps).float(), 21, fmt, near_ties=True)


@pytest.mark.parametrize("n, block", [(20, 7), (33, 16), (64, 64), (65, 64), (9, 1)])
def test_block_boundaries(n, block):
    _check(_clustered(5, n, 16), min(n, 6), "bfloat16", block=block)


def test_fallback_rows_are_exact():
    # no spare screened columns: every row falls back to the float64 screen
    x = _clustered(6, 70, 16)
    stats = _check(x, 10, "bfloat16", extra=0)
    assert stats.fallback_rows == 70
    # identical features: every row's candidate list is the whole set
    stats = _check(torch.ones(250, 5), 4, "bfloat16")
    assert stats.fallback_fraction == 1.0


def test_refine_twin_matches_kernel():
    from ptl_ext import _torch_kernels

    x = _clustered(7, 40, 8)
    g = torch.Generator().manual_seed(0)
    cand = torch.randint(0, 40, (12, 9), generator=g)
    rows = torch.arange(12) * 3
    count = torch.randint(3, 10, (12,), generator=g)
    got = ops.rerank_refine(x, rows, cand, count, 3)
    want = _torch_kernels.rerank_refine(x, rows, cand, count, 3)
    assert torch.equal(got[1], want[1])
    torch.testing.assert_close(got[0], want[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(got[2], want[2], rtol=1e-6, atol=0)
    if ops.HAS_C:
        with pytest.raises(ValueError, match="count must lie"):
            ops.rerank_refine(x, rows, cand, torch.full((12,), 2), 3)


@pytest.mark.parametrize("search", ["bfloat16", "float32"])
def test_rerank_far_from_the_origin_matches_float64(textbook, search):
    g = torch.Generator().manual_seed(8)
    centre = torch.randn(1, 32, generator=g) * 1e3 / 6
    x = (centre + torch.rand(90, 1, generator=g) * 0.5 * torch.randn(90, 32, generator=g)).float()
    qf, gf = x[:20], x[20:]
    want = textbook.re_ranking(qf.numpy(), gf.numpy(), 20, 6, 0.3)
    got = re_ranking(qf, gf, search=search)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("search", ["bfloat16", "float16", "float32"])
def test_one_answer_whatever_the_blocks(device, search):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x = _clustered(9, 61, 40).to(device)
    qf, gf = x[:19], x[19:]
    whole = re_ranking(qf, gf, k1=6, k2=3, search=search, block_rows=19)
    for rows in (1, 2, 4, 7, 18):
        assert torch.equal(re_ranking(qf, gf, k1=6, k2=3, search=search, block_rows=rows), whole)


def test_refuses_non_finite():
    x = _clustered(10, 20, 4).numpy()
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[3, 1] = bad
        with pytest.raises(ValueError, match="NaN or inf"):
            re_ranking(y[:5], y[5:], k1=3, search="bfloat16")


@pytest.mark.parametrize("device", DEVICES)
def test_time_rerank(monkeypatch, device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    from ptl_ext.reid import screen, timing

    monkeypatch.setitem(timing.SCALES, "tiny", (20, 70))
    result = timing.time_rerank(device, "tiny", repeats=1)
    assert result["format"] == {"cpu": "bfloat16", "cuda": "float16"}[device]  # screened whatever the default
    assert result["default_format"] == screen.search_format(device)
    assert 0.0 <= result["fallback_fraction"] <= 1.0
    assert result["max_abs_diff"] < 1e-5 and result["screened_s"] > 0


def test_screen_select_twin_matches_kernel():
    from ptl_ext import _torch_kernels

    g = torch.Generator().manual_seed(11)
    est = torch.randn(37, 300, generator=g)
    est[3, 10:40] = 0.25  # ties: the kernel breaks them by index
    got = ops.rerank_screen_select(est, 50, 9)
    want = _torch_kernels.rerank_screen_select(est, 50, 9)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
    assert torch.equal(got[0], want[0]) and torch.equal(got[2], want[2])
    assert torch.equal(est.gather(1, got[1]), got[0]) and torch.equal(est.gather(1, got[3]), got[2])
    tied = got[1][3][got[0][3] == 0.25]
    assert torch.equal(tied, tied.sort().values)


@pytest.mark.parametrize("rows", [[0, 5, 99], list(range(100))])
def test_exact_rows_both_ways(rows):
    # few rows: every feature re-checked; many: the float64 screen
    from ptl_ext.reid import screen

    x = _clustered(12, 200, 24)
    x[50:60] = x[5]  # duplicates of a re-checked row
    rows = torch.tensor(rows)
    dist, idx, rowmax = torch.zeros(200, 12), torch.zeros(200, 12, dtype=torch.int64), torch.zeros(200)
    screen._exact_rows(x, rows, 12, dist, idx, rowmax)
    want_d, want_i, want_max = _reference(x, 12)
    assert torch.equal(idx[rows], want_i[rows])
    torch.testing.assert_close(dist[rows].double(), want_d[rows], rtol=2e-7, atol=0)
    torch.testing.assert_close(rowmax[rows].double(), want_max[rows], rtol=2e-7, atol=0)


def test_cpu_format_follows_the_cpu(monkeypatch):
    from ptl_ext.reid import screen

    for flags, want in (({"avx2", "avx512_bf16"}, "float32"), ({"avx512f", "amx_bf16", "amx_tile"}, "bfloat16")):
        monkeypatch.setattr(screen, "_cpu_flags", lambda flags=flags: flags)
        screen.cpu_search_format.cache_clear()
        assert screen.cpu_search_format() == want
        assert screen.search_format("cpu") == want and screen.search_format("cpu", "float16") == "float16"
    screen.cpu_search_format.cache_clear()
    assert screen.search_format("cuda") == "float32"  # measured slower than float32 on an H200: asked for only
    assert screen.search_format("cuda", "float16") == "float16"
