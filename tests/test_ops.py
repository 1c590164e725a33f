"""The fused BConv-Cell op (ptl_ext.ops) against its pure-PyTorch reference (ptl_ext.reference)."""

import os
import subprocess
import sys

import pytest
import torch

from ptl_ext import ops, reference

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
SHAPES = [  # (B, K, H, W)
    (1, 1, 1, 1),
    (1, 3, 5, 7),
    (2, 5, 3, 3),
    (3, 8, 16, 8),
    (4, 17, 9, 13),
    (2, 64, 4, 5),
]
TOL = {
    torch.float32: dict(rtol=1e-5, atol=2e-6),
    torch.float64: dict(rtol=1e-12, atol=1e-12),
    torch.bfloat16: dict(rtol=2e-2, atol=2e-2),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
}


def test_compiled_extension_is_loaded():
    assert ops.HAS_C, f"ptl_ext._C failed to import: {ops.C_IMPORT_ERROR}"
    assert hasattr(torch.ops.ptl_ext, "bconv_cell_update")


def _dtypes(device):
    return [torch.float32, torch.float64, torch.bfloat16] + ([torch.float16] if device == "cuda" else [])


def _inputs(shape, dtype, device, seed=0, scale=3.0):
    b, k, h, w = shape
    gen = torch.Generator().manual_seed(seed)
    gates = (torch.randn(b, 4 * k, h, w, generator=gen, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
    c_prev = (torch.randn(b, k, h, w, generator=gen, dtype=torch.float64) * scale).to(device=device, dtype=dtype)
    return gates, c_prev


def _expected(gates, c_prev):
    """Reference in float32 for the 16-bit types (the op computes in float32), else in the input dtype."""
    if gates.dtype in (torch.bfloat16, torch.float16):
        y, c = reference.bconv_cell_update(gates.float(), None if c_prev is None else c_prev.float())
        return y.to(gates.dtype), c.to(gates.dtype)
    return reference.bconv_cell_update(gates, c_prev)


def _assert_close(actual, expected):
    torch.testing.assert_close(actual, expected, **TOL[expected.dtype])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("with_prev", [True, False])
def test_forward_matches_reference(device, shape, with_prev):
    for dtype in _dtypes(device):
        gates, c_prev = _inputs(shape, dtype, device)
        c_prev = c_prev if with_prev else None
        y, c = ops.bconv_cell_update(gates, c_prev)
        y_ref, c_ref = _expected(gates, c_prev)
        assert y.shape == c.shape == (shape[0], shape[1], shape[2], shape[3])
        assert y.dtype == c.dtype == dtype and y.is_contiguous() and c.is_contiguous()
        _assert_close(y, y_ref)
        _assert_close(c, c_ref)


def _grads(fn, gates, c_prev, dy, dc):
    gates = gates.detach().clone().requires_grad_(True)
    c_prev = None if c_prev is None else c_prev.detach().clone().requires_grad_(True)
    y, c = fn(gates, c_prev)
    outputs = [t for t, g in ((y, dy), (c, dc)) if g is not None]
    grads_out = [g for g in (dy, dc) if g is not None]
    inputs = [gates] + ([c_prev] if c_prev is not None else [])
    return torch.autograd.grad(outputs, inputs, grads_out)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("through", ["both", "y", "c"])
@pytest.mark.parametrize("with_prev", [True, False])
def test_backward_matches_reference(device, shape, through, with_prev):
    for dtype in _dtypes(device):
        gates, c_prev = _inputs(shape, dtype, device, seed=1)
        c_prev = c_prev if with_prev else None
        gen = torch.Generator().manual_seed(2)
        dy = torch.randn(shape, generator=gen).to(device=device, dtype=dtype) if through in ("both", "y") else None
        dc = torch.randn(shape, generator=gen).to(device=device, dtype=dtype) if through in ("both", "c") else None
        got = _grads(ops.bconv_cell_update, gates, c_prev, dy, dc)
        if dtype in (torch.bfloat16, torch.float16):
            up = lambda t: None if t is None else t.float()  # noqa: E731
            want = [g.to(dtype) for g in _grads(reference.bconv_cell_update, up(gates), up(c_prev), up(dy), up(dc))]
        else:
            want = _grads(reference.bconv_cell_update, gates, c_prev, dy, dc)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_close(g, w)


def _non_contiguous_variants(gates, c_prev):
    """Same values, other strides: channels_last, a channel slice of a wider tensor, a transposed view."""
    b, c4, h, w = gates.shape
    wide = torch.randn(b, c4 + 8, h, w, dtype=gates.dtype, device=gates.device)
    wide[:, 3 : 3 + c4] = gates
    transposed = gates.transpose(2, 3).contiguous().transpose(2, 3)
    yield gates.contiguous(memory_format=torch.channels_last), c_prev.contiguous(memory_format=torch.channels_last)
    yield wide[:, 3 : 3 + c4], c_prev[:, :, :, :].transpose(2, 3).contiguous().transpose(2, 3)
    yield transposed, c_prev


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_non_contiguous_inputs(device, dtype):
    """Any strides give exactly what the contiguous input gives (which matches the reference above)."""
    gates, c_prev = _inputs((2, 6, 5, 7), dtype, device, seed=3)
    y_ref, c_ref = ops.bconv_cell_update(gates, c_prev)
    dy = torch.randn_like(y_ref)
    grads_ref = _grads(ops.bconv_cell_update, gates, c_prev, dy, None)
    for g, cp in _non_contiguous_variants(gates, c_prev):
        assert not g.is_contiguous()
        y, c = ops.bconv_cell_update(g, cp)
        assert y.is_contiguous() and c.is_contiguous()
        torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
        torch.testing.assert_close(c, c_ref, rtol=0, atol=0)
        for got, want in zip(
            _grads(ops.bconv_cell_update, g, cp, dy.transpose(2, 3).contiguous().transpose(2, 3), None), grads_ref
        ):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_prev", [True, False])
def test_gradcheck_float64(device, with_prev):
    gates, c_prev = _inputs((2, 3, 3, 5), torch.float64, device, seed=4, scale=1.5)
    gates.requires_grad_(True)
    if with_prev:
        c_prev.requires_grad_(True)
        assert torch.autograd.gradcheck(ops.bconv_cell_update, (gates, c_prev))
    else:
        assert torch.autograd.gradcheck(lambda g: ops.bconv_cell_update(g, None), (gates,))


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_single_output(device):
    gates, c_prev = _inputs((1, 2, 3, 4), torch.float64, device, seed=5, scale=1.5)
    gates.requires_grad_(True)
    c_prev.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda g, c: ops.bconv_cell_update(g, c)[0], (gates, c_prev))
    assert torch.autograd.gradcheck(lambda g, c: ops.bconv_cell_update(g, c)[1], (gates, c_prev))


def test_gradient_for_c_prev_only_when_needed():
    gates, c_prev = _inputs((2, 3, 4, 4), torch.float32, "cpu", seed=6)
    gates.requires_grad_(True)
    y, c = ops.bconv_cell_update(gates, c_prev)  # c_prev does not require grad
    (y.sum() + c.sum()).backward()
    assert c_prev.grad is None and gates.grad is not None


def test_extreme_values_stay_finite():
    gates = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4, float("inf"), -float("inf"), 30.0]).repeat(4).view(1, 32, 1, 1)
    gates = gates.view(1, 4, 8, 1).transpose(1, 2).reshape(1, 32, 1, 1)
    c_prev = torch.full((1, 8, 1, 1), 2.0)
    y, c = ops.bconv_cell_update(gates, c_prev)
    y_ref, c_ref = reference.bconv_cell_update(gates, c_prev)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(c, c_ref)
    assert torch.isfinite(y).all() and torch.isfinite(c).all()


def test_matches_lstm_cell_with_identity_weights():
    """External check: LSTMCell (chunks i, f, g, o) with W_ih = permutation, zero bias and h = 0."""
    b, k, h, w = 2, 5, 3, 4
    gates, c_prev = _inputs((b, k, h, w), torch.float64, "cpu", seed=7)
    cell = torch.nn.LSTMCell(4 * k, k, bias=False).double()
    ours_to_lstm = torch.cat(
        [torch.arange(0, k), torch.arange(k, 2 * k), torch.arange(3 * k, 4 * k), torch.arange(2 * k, 3 * k)]
    )
    with torch.no_grad():
        cell.weight_ih.copy_(torch.eye(4 * k, dtype=torch.float64)[ours_to_lstm])
        cell.weight_hh.zero_()
    x = gates.permute(0, 2, 3, 1).reshape(-1, 4 * k)
    cx = c_prev.permute(0, 2, 3, 1).reshape(-1, k)
    hy, cy = cell(x, (torch.zeros_like(cx), cx))
    y, c = ops.bconv_cell_update(gates, c_prev)
    torch.testing.assert_close(y.permute(0, 2, 3, 1).reshape(-1, k), hy)
    torch.testing.assert_close(c.permute(0, 2, 3, 1).reshape(-1, k), cy)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    for dtype in (torch.float32, torch.float64):
        gates, c_prev = _inputs((2, 3, 4, 5), dtype, device, seed=8)
        gates.requires_grad_(True)
        c_prev.requires_grad_(True)
        torch.library.opcheck(torch.ops.ptl_ext.bconv_cell_update.default, (gates, c_prev))
        torch.library.opcheck(torch.ops.ptl_ext.bconv_cell_update.default, (gates, None))


def test_fake_kernels_raise_the_types_of_the_compiled_op():
    gates = torch.randn(2, 8, 3, 3)
    cases = [
        (torch.randn(8, 3, 3), None),  # unbatched gates
        (torch.randn(2, 7, 3, 3), None),  # channels not divisible by 4
        (gates, torch.randn(2, 2, 3, 4)),  # c_prev of the wrong shape
        (gates, torch.randn(2, 2, 3, 3, dtype=torch.float64)),  # c_prev of another dtype
    ]
    for args in cases:
        with pytest.raises((ValueError, TypeError)) as real:
            torch.ops.ptl_ext.bconv_cell_update.default(*args)
        meta = [None if a is None else a.to("meta") for a in args]
        with pytest.raises(real.type):
            torch.ops.ptl_ext.bconv_cell_update.default(*meta)


def test_torch_compile_fullgraph():
    def step(gates, c_prev):
        y, c = ops.bconv_cell_update(gates * 2.0, c_prev)
        return (y * c).sum(), c

    gates, c_prev = _inputs((2, 4, 6, 5), torch.float32, "cpu", seed=9)
    compiled = torch.compile(step, fullgraph=True, backend="inductor")
    g1 = gates.clone().requires_grad_(True)
    g2 = gates.clone().requires_grad_(True)
    loss_eager, c_eager = step(g1, c_prev)
    loss_compiled, c_compiled = compiled(g2, c_prev)
    torch.testing.assert_close(loss_compiled, loss_eager)
    torch.testing.assert_close(c_compiled, c_eager)
    loss_eager.backward()
    loss_compiled.backward()
    torch.testing.assert_close(g2.grad, g1.grad)


@pytest.mark.parametrize(
    "gates_shape, c_shape, match",
    [
        ((4, 5, 5), (1, 1, 5, 5), r"gates must be a 4-D tensor"),
        ((2, 6, 5, 5), (2, 1, 5, 5), r"gates channels \(6\) must be divisible by 4"),
        ((2, 8, 5, 5), (2, 3, 5, 5), r"c_prev must have shape"),
        ((2, 8, 5, 5), (2, 2, 5, 4), r"c_prev must have shape"),
        ((2, 8, 5, 5), (2, 2, 5), r"c_prev must be a 4-D tensor"),
    ],
)
def test_bad_shapes_name_the_argument(gates_shape, c_shape, match):
    with pytest.raises(ValueError, match=match):
        ops.bconv_cell_update(torch.randn(gates_shape), torch.randn(c_shape))


def test_bad_dtypes_name_the_argument():
    with pytest.raises(TypeError, match=r"gates must have dtype .*got Long"):
        ops.bconv_cell_update(torch.ones(1, 4, 2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match=r"gates must have dtype .* on CPU, got Half"):
        ops.bconv_cell_update(torch.ones(1, 4, 2, 2, dtype=torch.half))
    with pytest.raises(TypeError, match=r"c_prev must have the dtype of gates \(Float\), got Double"):
        ops.bconv_cell_update(torch.randn(1, 4, 2, 2), torch.randn(1, 1, 2, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"c_prev must have the dtype of gates"):
        ops.bconv_cell_update(torch.randn(1, 4, 2, 2), torch.ones(1, 1, 2, 2, dtype=torch.int32))


def test_bad_device_names_the_argument():
    with pytest.raises(ValueError, match=r"c_prev must be on the device of gates \(cpu\), got meta"):
        torch.ops.ptl_ext.bconv_cell_update.default(torch.randn(1, 4, 2, 2), torch.empty(1, 1, 2, 2, device="meta"))


@pytest.mark.cuda
def test_cuda_device_mismatch_names_the_argument():
    with pytest.raises(ValueError, match=r"c_prev must be on the device of gates"):
        ops.bconv_cell_update(torch.randn(1, 4, 2, 2, device="cuda"), torch.randn(1, 1, 2, 2))


def test_backward_op_checks_gradients():
    gates, c_prev = _inputs((1, 2, 3, 3), torch.float32, "cpu")
    _, c = ops.bconv_cell_update(gates, c_prev)
    with pytest.raises(ValueError, match=r"grad_y must have shape"):
        torch.ops.ptl_ext.bconv_cell_update_backward(gates, c_prev, c, torch.randn(1, 2, 3, 4), None, True)


def test_empty_batch():
    y, c = ops.bconv_cell_update(torch.randn(0, 8, 3, 3))
    assert y.shape == c.shape == (0, 2, 3, 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 7, 9, 11), (3, 8, 9, 11)], ids=["scalar-path", "vector-path"])
def test_outputs_every_element_written(device, dtype, shape):
    """Poison the allocator's blocks with NaN, free them, and check the op overwrote every element. On
    CUDA, K·H·W = 693 (odd) takes the one-element path; 792 (a multiple of 8) the 16-byte-pack path."""
    if dtype not in _dtypes(device):
        pytest.skip(f"no {dtype} kernel on {device}")
    gates, c_prev = _inputs(shape, dtype, device, seed=10)
    dy = torch.randn(shape, device=device, dtype=dtype)
    for with_prev in (True, False):
        cp = c_prev if with_prev else None
        poison = [torch.full(gates.shape, float("nan"), device=device, dtype=dtype) for _ in range(4)]
        del poison
        y, c = torch.ops.ptl_ext.bconv_cell_update(gates, cp)
        assert not torch.isnan(y).any() and not torch.isnan(c).any()
        poison = [torch.full(gates.shape, float("nan"), device=device, dtype=dtype) for _ in range(4)]
        del poison
        dg, dcp = torch.ops.ptl_ext.bconv_cell_update_backward(gates, cp, c, dy, None, with_prev)
        assert not torch.isnan(dg).any() and not torch.isnan(dcp).any()


@pytest.mark.parametrize("device", DEVICES)
def test_float64_matches_the_reference_and_the_cpu(device):
    gates, c_prev = _inputs((4, 33, 17, 9), torch.float64, "cpu", seed=11)
    y, c = ops.bconv_cell_update(gates, c_prev)
    y_dev, c_dev = ops.bconv_cell_update(gates.to(device), c_prev.to(device))
    y_ref, c_ref = reference.bconv_cell_update(gates, c_prev)
    for got, cpu, ref in ((y_dev, y, y_ref), (c_dev, c, c_ref)):
        torch.testing.assert_close(got.cpu(), cpu)
        torch.testing.assert_close(got.cpu(), ref, **TOL[torch.float64])


_ISA_SCRIPT = """
import torch
from ptl_ext import ops, reference
assert ops.cpu_kernel_isa() == {isa!r}, ops.cpu_kernel_isa()
torch.manual_seed(0)
for dtype in (torch.float32, torch.float64, torch.bfloat16):
    g = torch.randn(2, 4 * 19, 5, 7, dtype=dtype) * 3
    c = torch.randn(2, 19, 5, 7, dtype=dtype) * 3
    g.requires_grad_(True); c.requires_grad_(True)
    y, cc = ops.bconv_cell_update(g, c)
    (y.float().sum() + (cc.float() ** 2).sum()).backward()
    gf, cf = g.detach().float().requires_grad_(True), c.detach().float().requires_grad_(True)
    yr, cr = reference.bconv_cell_update(gf, cf)
    (yr.sum() + (cr ** 2).sum()).backward()
    tol = dict(rtol=2e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=1e-5, atol=1e-5)
    for a, b in ((y, yr), (cc, cr), (g.grad, gf.grad), (c.grad, cf.grad)):
        torch.testing.assert_close(a.float(), b, **tol)
inf, nan = float("inf"), float("nan")
x = torch.tensor([-inf, -200.0, -88.6, -30.0, 0.0, 30.0, 88.6, 200.0, inf, nan])
n = x.numel()
# c = sigmoid(a_i) with f = 0, g = 1; y = tanh(c_prev) with i = 0, f = o = 1, g = 0
sig_gates = torch.stack([x, torch.full((n,), -inf), torch.zeros(n), torch.full((n,), inf)])
_, sig = ops.bconv_cell_update(sig_gates.view(1, 4, n, 1))
y, _ = ops.bconv_cell_update(torch.stack([torch.full((n,), -inf), torch.full((n,), inf), torch.full((n,), inf),
                                          torch.zeros(n)]).view(1, 4, n, 1), x.view(1, 1, n, 1))
sig, y = sig.view(-1), y.view(-1)
assert sig[0] == 0 and sig[-2] == 1 and sig[4] == 0.5 and torch.isnan(sig[-1]), sig
assert (sig[1:3] >= 0).all() and (sig[1:3] < 1e-38).all() and (sig[5:8] == 1).all(), sig
assert y[0] == -1 and y[-2] == 1 and y[4] == 0 and torch.isnan(y[-1]), y
assert (y[1:4] == -1).all() and (y[5:8] == 1).all(), y
print("ok")
"""


def _supported_isas():
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isas = ["default"]
    if " avx2 " in flags and " fma " in flags:
        isas.append("avx2")
    if all(f" {f} " in flags for f in ("avx512f", "avx512bw", "avx512vl", "avx512dq")):
        isas.append("avx512")
    return isas


@pytest.mark.parametrize("isa", ["default", "avx2", "avx512"])
def test_every_cpu_kernel_family(isa):
    """Each SIMD family, forced through ATEN_CPU_CAPABILITY in a fresh process, matches the reference and
    gives the exact activations at special values (±inf, saturation, NaN)."""
    if isa not in _supported_isas():
        pytest.skip(f"this CPU has no {isa}")
    env = dict(os.environ, ATEN_CPU_CAPABILITY=isa)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _ISA_SCRIPT.format(isa=isa)], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _ulp_error(got, want64):
    """Error in units of the float32 spacing at the true value."""
    spacing = torch.from_numpy(__import__("numpy").spacing(want64.abs().float().numpy()))
    return ((got.double() - want64).abs() / spacing.double()).max().item()


@pytest.mark.parametrize("device", DEVICES)
def test_activations_are_accurate_to_a_few_ulp(device):
    """Saturated gates expose the activations: with i = 0, f = 1, o = 1, y = tanh(c_prev); with
    c_prev = 0 and g = 1, c = sigmoid(a_i). Both within 3 ulp of float64 over a wide range."""
    x = torch.cat([torch.linspace(-20, 20, 40001), torch.logspace(-8, 1, 2000), -torch.logspace(-8, 1, 2000)])
    n = x.numel()
    inf = float("inf")
    tanh_gates = torch.stack([torch.full((n,), -inf), torch.full((n,), inf), torch.full((n,), inf), torch.zeros(n)])
    y, c = ops.bconv_cell_update(tanh_gates.view(1, 4, n, 1).to(device), x.view(1, 1, n, 1).to(device))
    assert torch.equal(c.cpu().view(-1), x)
    assert _ulp_error(y.cpu().view(-1), torch.tanh(x.double())) <= 3
    sig_gates = torch.stack([x, torch.zeros(n), torch.full((n,), inf), torch.full((n,), inf)])
    _, c = ops.bconv_cell_update(sig_gates.view(1, 4, n, 1).to(device), torch.zeros(1, 1, n, 1, device=device))
    assert _ulp_error(c.cpu().view(-1), torch.sigmoid(x.double())) <= 3


def test_cuda_input_without_cuda_kernels_says_how_to_rebuild(monkeypatch):
    """A build without CUDA kernels meets a CUDA tensor: a clear error naming the rebuild, not the
    dispatcher's 'Could not run ... with arguments from the CUDA backend'. Fake CUDA tensors stand in
    for real ones, so this runs without a GPU."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    monkeypatch.setattr(ops, "CELL_HAS_CUDA", False)
    with FakeTensorMode():
        gates = torch.empty(1, 4, 2, 2, device="cuda")
        c_prev = torch.empty(1, 1, 2, 2, device="cuda")
        for args in ((gates,), (gates, c_prev), (torch.empty(1, 4, 2, 2), c_prev)):
            with pytest.raises(RuntimeError, match=r"built without CUDA kernels.*PTL_EXT_FORCE_CUDA=1"):
                ops.bconv_cell_update(*args)
    ops._check_cell_cuda_built(torch.empty(1, 4, 2, 2), None, False)  # CPU tensors never need CUDA kernels


# ------------------------------------------------------------- device cases (CUDA-only where the CPU cannot run them)


@pytest.mark.cuda
def test_cuda_mixed_devices_name_the_argument_both_ways():
    gates, c_prev = _inputs((2, 3, 4, 4), torch.float32, "cuda", seed=12)
    _, c = ops.bconv_cell_update(gates, c_prev)
    with pytest.raises(ValueError, match=r"c_prev must be on the device of gates \(cpu\), got cuda"):
        ops.bconv_cell_update(gates.cpu(), c_prev)
    with pytest.raises(ValueError, match=r"c_prev must be on the device of gates \(cuda:\d\), got cpu"):
        ops.bconv_cell_update(gates, c_prev.cpu())
    backward = torch.ops.ptl_ext.bconv_cell_update_backward
    with pytest.raises(ValueError, match=r"grad_y must be on the device of gates \(cuda:\d\), got cpu"):
        backward(gates, c_prev, c, torch.ones(c.shape), None, True)
    with pytest.raises(ValueError, match=r"c must be on the device of gates \(cpu\), got cuda"):
        backward(gates.cpu(), c_prev.cpu(), c, c.cpu(), None, True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_misaligned_views_match_aligned(device, dtype):
    """Contiguous views one element past a 16-byte boundary take the one-element path (CUDA) or the
    unaligned loads (CPU); they must give exactly what aligned copies give (same per-element math)."""
    if dtype not in _dtypes(device):
        pytest.skip(f"no {dtype} kernel on {device}")
    shape = (2, 8, 4, 8)
    gates, c_prev = _inputs(shape, dtype, device, seed=13)
    dy = torch.randn(shape, device=device, dtype=dtype)

    def misaligned(t):
        view = torch.empty(t.numel() + 1, device=device, dtype=dtype)[1:].view(t.shape)
        assert view.is_contiguous() and view.data_ptr() % 16 != 0
        return view.copy_(t)

    want = ops.bconv_cell_update(gates, c_prev)
    got = ops.bconv_cell_update(misaligned(gates), misaligned(c_prev))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    backward = torch.ops.ptl_ext.bconv_cell_update_backward
    want = backward(gates, c_prev, want[1], dy, None, True)
    got = backward(misaligned(gates), misaligned(c_prev), misaligned(got[1]), misaligned(dy), None, True)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.parametrize("k", [(1 << 29) + 8, (1 << 29) + 7], ids=["vector-path", "scalar-path"])
def test_cuda_64bit_index_path(k):
    """gates with more than 2^31 elements (bfloat16, 4 GiB) take the 64-bit index kernels; the rows past
    the 32-bit range are checked against the reference."""
    if torch.cuda.get_device_properties(0).total_memory < 24 * 2**30:
        pytest.skip("needs a GPU with 24 GiB")
    gen = torch.Generator(device="cuda").manual_seed(14)
    gates = torch.randn(1, 4 * k, 1, 1, device="cuda", dtype=torch.bfloat16, generator=gen)
    c_prev = torch.randn(1, k, 1, 1, device="cuda", dtype=torch.bfloat16, generator=gen)
    y, c = ops.bconv_cell_update(gates, c_prev)
    tail = slice(k - 4096, k)
    small_gates = gates.view(4, k)[:, tail].reshape(1, 4 * 4096, 1, 1)
    small_prev = c_prev.view(k)[tail].view(1, 4096, 1, 1)
    y_ref, c_ref = _expected(small_gates, small_prev)
    _assert_close(y.view(k)[tail].view(1, 4096, 1, 1), y_ref)
    _assert_close(c.view(k)[tail].view(1, 4096, 1, 1), c_ref)
    dy = torch.ones_like(y)
    del y
    dgates, dc_prev = torch.ops.ptl_ext.bconv_cell_update_backward(gates, c_prev, c, dy, None, True)
    small_dg, small_dcp = torch.ops.ptl_ext.bconv_cell_update_backward(
        small_gates, small_prev, c.view(k)[tail].view(1, 4096, 1, 1), dy.view(k)[tail].view(1, 4096, 1, 1), None, True
    )
    torch.testing.assert_close(dgates.view(4, k)[:, tail].reshape(small_dg.shape), small_dg, rtol=0, atol=0)
    torch.testing.assert_close(dc_prev.view(k)[tail].view(small_dcp.shape), small_dcp, rtol=0, atol=0)


@pytest.mark.cuda
def test_cuda_runs_on_the_current_stream():
    """Inputs written on a side stream after a long spin: an op launched on any other stream would read
    them before they exist."""
    gates, c_prev = _inputs((4, 16, 16, 16), torch.float32, "cuda", seed=15)
    want = ops.bconv_cell_update(gates, c_prev)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)
        g, cp = torch.empty_like(gates).copy_(gates), torch.empty_like(c_prev).copy_(c_prev)
        got = ops.bconv_cell_update(g, cp)
        grads = torch.ops.ptl_ext.bconv_cell_update_backward(g, cp, got[1], torch.ones_like(cp), None, True)
    side.synchronize()
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    want_grads = torch.ops.ptl_ext.bconv_cell_update_backward(
        gates, c_prev, want[1], torch.ones_like(c_prev), None, True
    )
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_batch_and_extreme_values(device):
    y, c = ops.bconv_cell_update(torch.randn(0, 8, 3, 3, device=device))
    assert y.shape == c.shape == (0, 2, 3, 3) and y.device.type == device
    gates = torch.tensor([-1e4, -100.0, 0.0, 100.0, 1e4, float("inf"), -float("inf"), 30.0]).repeat(4).view(1, 32, 1, 1)
    c_prev = torch.full((1, 8, 1, 1), 2.0)
    for dtype in _dtypes(device):
        g, cp = gates.to(device, dtype), c_prev.to(device, dtype)
        y, c = ops.bconv_cell_update(g, cp)
        y_ref, c_ref = _expected(g, cp)
        _assert_close(y, y_ref)
        _assert_close(c, c_ref)
        assert torch.isfinite(y).all() and torch.isfinite(c).all()


@pytest.mark.parametrize(
    "device, mode",
    [
        ("cpu", "default"),
        pytest.param("cuda", "default", marks=pytest.mark.cuda),
        pytest.param("cuda", "reduce-overhead", marks=pytest.mark.cuda),
    ],
)
def test_torch_compile(device, mode):
    def step(gates, c_prev):
        y, c = ops.bconv_cell_update(gates * 2.0, c_prev)
        return (y * c).sum(), c

    compiled = torch.compile(step, fullgraph=True, mode=mode)
    for seed in range(3):  # reduce-overhead records, then replays
        torch.compiler.cudagraph_mark_step_begin()
        gates, c_prev = _inputs((2, 8, 6, 5), torch.float32, device, seed=16 + seed)
        g1, g2 = gates.clone().requires_grad_(True), gates.clone().requires_grad_(True)
        loss_eager, c_eager = step(g1, c_prev)
        loss_compiled, c_compiled = compiled(g2, c_prev)
        torch.testing.assert_close(loss_compiled, loss_eager)
        torch.testing.assert_close(c_compiled, c_eager)
        loss_eager.backward()
        loss_compiled.backward()
        torch.testing.assert_close(g2.grad, g1.grad)
