"""ptl_ext.reid.knn: the symmetric CPU kernel, the torch twin and faiss give the same neighbour lists."""

import builtins

import numpy as np
import pytest
import torch

from ptl_ext import ops, reference
from ptl_ext.errors import MissingPackageError
from ptl_ext.reid import knn

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


def _points(seed, n=90, dim=12, duplicates=10):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    for _ in range(duplicates):
        a, b = rng.integers(0, n, 2)
        x[a] = x[b]
    x = torch.from_numpy(x)
    return x, x.pow(2).sum(1)


def _exact(x, k):
    """Neighbours by exact float64 distances (ties by index), the distances, and the rows whose k+1
    nearest have no near-tie below float32 resolution (gaps exactly 0 or above 1e-5 relative)."""
    d = ((x.double()[:, None] - x.double()[None]) ** 2).sum(-1)
    order = torch.from_numpy(np.argsort(d.numpy(), axis=1, kind="stable"))
    head = d.gather(1, order[:, : k + 1])
    gaps = head[:, 1:] - head[:, :-1]
    clear = ((gaps == 0) | (gaps > 1e-5 * head[:, 1:])).all(1)
    return order[:, :k], d, clear


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block", [1, 7, 32, 2048])
def test_kernel_matches_exact_order(seed, block):
    x, norms = _points(seed)
    k = 1 + seed * 4
    dist, idx, rowmax = ops.rerank_knn(x, norms, k, block)
    want_idx, exact, clear = _exact(x, k)
    assert clear.float().mean() > 0.9
    assert torch.equal(idx[clear], want_idx[clear])
    torch.testing.assert_close(exact.gather(1, idx), exact.gather(1, want_idx), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(rowmax.double(), exact.amax(1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(dist.double(), ((x[:, None] - x[idx]) ** 2).sum(-1).double(), rtol=1e-5, atol=1e-4)
    assert (dist[:, 1:] >= dist[:, :-1]).all()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    "other",
    [
        "twin",
        pytest.param("faiss", marks=pytest.mark.skipif(not knn.faiss_available(), reason="needs faiss")),
    ],
)
def test_twin_and_faiss_match_kernel(seed, other):
    x, norms = _points(seed, n=150, dim=20)
    dist, idx, rowmax = ops.rerank_knn(x, norms, 21, 16)
    got = reference.rerank_knn(x, norms, 21, 16) if other == "twin" else knn.knn_graph(x, norms, 21, "faiss")
    assert torch.equal(got[1], idx)
    torch.testing.assert_close(got[0], dist, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[2], rowmax, rtol=1e-5, atol=1e-4)


def test_k_equal_to_n():
    x, norms = _points(1, n=9)
    _, idx, _ = ops.rerank_knn(x, norms, 9, 4)
    assert torch.equal(idx.sort(1).values, torch.arange(9).expand(9, 9))


def test_backend_resolution(monkeypatch):
    assert knn.resolve_backend("auto") == "torch"
    if knn.faiss_available():  # CI installs faiss-cpu; a machine without it gets the one-line error
        assert knn.resolve_backend("faiss") == "faiss"
    else:
        with pytest.raises(MissingPackageError, match="pip install faiss-cpu"):
            knn.resolve_backend("faiss")
    with pytest.raises(ValueError, match="backend"):
        knn.resolve_backend("annoy")
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    assert not knn.faiss_available()
    assert knn.resolve_backend("auto") == "torch"
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        knn.resolve_backend("faiss")


def test_kernel_errors():
    x, norms = _points(0, n=10)
    with pytest.raises(ValueError, match="k must be in"):
        ops.rerank_knn(x, norms, 11, 4)
    with pytest.raises(ValueError, match="norms must have shape"):
        ops.rerank_knn(x, norms[:5], 3, 4)
    with pytest.raises(TypeError, match="feats must have dtype"):
        ops.rerank_knn(x.double(), norms.double(), 3, 4)
    with pytest.raises(ValueError, match="block must be"):
        ops.rerank_knn(x, norms, 3, 0)


@pytest.mark.parametrize("device", DEVICES)
def test_device_matches_the_twin(device):
    """The kNN graph on ``device`` against the pure-PyTorch twin on the CPU."""
    x, norms = _points(4, n=300, dim=32)
    got = knn.knn_graph(x.to(device), norms.to(device), 21, "torch")
    assert got[1].device.type == device
    want = reference.rerank_knn(x, norms, 21, 64)
    assert torch.equal(got[1].cpu(), want[1])
    torch.testing.assert_close(got[2].cpu(), want[2], rtol=1e-5, atol=1e-4)
