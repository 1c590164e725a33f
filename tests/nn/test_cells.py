"""BConvCell / BConvCellV2: the forward math and every latent-state rule of the cells (docs/methods.md)."""

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ptl_ext import reference
from ptl_ext.nn import BConvCell, BConvCellV2, clone_states, reset_states
from ptl_ext.nn.cells import carry_state

CELLS = [BConvCell, BConvCellV2]
COMPILE_MODES = ["default", "reduce-overhead", "max-autotune"]

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")


def make(cls, in_ch=3, out_ch=4, stride=1, dtype=torch.float32, **kw):
    torch.manual_seed(0)
    return cls(in_ch, out_ch, stride=stride, **kw).to(dtype)


def inputs(*shape, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def zero_state_output(cell, x):
    """What ``cell`` gives for ``x`` from a zero state (an eval forward), without touching its state."""
    twin = copy.deepcopy(cell).eval()
    with torch.no_grad():
        return twin(x)


def v1_step(cell, x, c_prev):
    return reference.bconv_cell_update(F.conv2d(x, cell.conv.weight, stride=cell.stride, padding=1), c_prev)


def v2_step(cell, x, c_prev, hs_prev):
    extra = [n - ((m - 1) * cell.stride - 2 + 3) for n, m in zip(x.shape[-2:], hs_prev.shape[-2:])]
    r = F.conv_transpose2d(hs_prev, cell.recover.weight, stride=cell.stride, padding=1, output_padding=extra)
    gates = F.conv2d(torch.cat([x, r], 1), cell.conv.weight, stride=cell.stride, padding=1)
    y, c = reference.bconv_cell_update(gates, c_prev)
    return y, c, (1 - cell.momentum) * hs_prev + cell.momentum * y


@pytest.mark.parametrize("stride", [1, 2])
def test_bconv_cell_equals_conv_then_reference_update(stride):
    cell = make(BConvCell, stride=stride, dtype=torch.float64)
    x1, x2 = inputs(2, 3, 8, 6, dtype=torch.float64), inputs(2, 3, 8, 6, dtype=torch.float64, seed=2)
    with torch.no_grad():
        y1, c1 = v1_step(cell, x1, None)
        y2, _ = v1_step(cell, x2, c1)
        torch.testing.assert_close(cell(x1), y1)
        torch.testing.assert_close(cell(x2), y2)
    assert y1.shape == (2, 4, 8 // stride, (6 + stride - 1) // stride)


@pytest.mark.parametrize("stride", [1, 2])
def test_bconv_cell_v2_equals_direct_composition(stride):
    cell = make(BConvCellV2, stride=stride, dtype=torch.float64, momentum=0.3)
    x1, x2 = inputs(2, 3, 8, 7, dtype=torch.float64), inputs(2, 3, 8, 7, dtype=torch.float64, seed=2)
    out_hw = (8 // stride, (7 + stride - 1) // stride)
    with torch.no_grad():
        y1, c1, hs1 = v2_step(cell, x1, None, torch.zeros(2, 4, *out_hw, dtype=torch.float64))
        y2, c2, hs2 = v2_step(cell, x2, c1, hs1)
        torch.testing.assert_close(cell(x1), y1)
        torch.testing.assert_close(cell(x2), y2)
    torch.testing.assert_close(cell.states[0], c2)
    torch.testing.assert_close(cell.states[1], hs2)
    assert not torch.equal(hs1, torch.zeros_like(hs1))
    cell.eval()  # eval: the first step's composition (zero history through `recover`), state untouched
    with torch.no_grad():
        torch.testing.assert_close(cell(x2), v2_step(cell, x2, None, torch.zeros_like(hs1))[0])
    torch.testing.assert_close(cell.states[1], hs2)


@pytest.mark.parametrize("cls", CELLS)
def test_gradcheck_tiny_cell_float64_with_carried_state(cls):
    cell = make(cls, in_ch=2, out_ch=2, stride=2, dtype=torch.float64)
    x_prime = inputs(2, 2, 4, 4, dtype=torch.float64, seed=3)
    names = [n for n, _ in cell.named_parameters()]

    def run(x, *weights):
        cell.reset_state()
        with torch.no_grad():
            cell(x_prime)  # a fixed carried state (it is detached, so a constant for the check)
        return torch.func.functional_call(cell, dict(zip(names, weights)), (x,))

    x = inputs(2, 2, 4, 4, dtype=torch.float64).requires_grad_()
    weights = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    assert torch.autograd.gradcheck(run, (x, *weights), fast_mode=True)


@pytest.mark.parametrize("cls", CELLS)
def test_stored_state_is_detached_no_gradient_into_previous_batch(cls):
    cell = make(cls)
    x1 = inputs(2, 3, 6, 6).requires_grad_()
    cell(x1).sum().backward()  # frees the first batch's graph
    grad_after_first = x1.grad.clone()
    assert all(not s.requires_grad for s in cell.states)
    x2 = inputs(2, 3, 6, 6, seed=2).requires_grad_()
    cell(x2).sum().backward()  # would raise if the state still held the first graph
    torch.testing.assert_close(x1.grad, grad_after_first)
    assert x2.grad is not None


@pytest.mark.parametrize("cls", CELLS)
def test_training_forward_uses_the_previous_training_state(cls):
    cell = make(cls)
    x1, x2 = inputs(2, 3, 6, 6), inputs(2, 3, 6, 6, seed=2)
    with torch.no_grad():
        cell(x1)
        second = cell(x2)
    assert not torch.allclose(second, zero_state_output(cell, x2))


@pytest.mark.parametrize("cls", CELLS)
def test_two_eval_forwards_of_the_same_input_are_identical_and_from_zeros(cls):
    cell = make(cls)
    x, other = inputs(2, 3, 6, 6), inputs(2, 3, 6, 6, seed=5)
    with torch.no_grad():
        cell(other)  # a training state exists
        cell.eval()
        first = cell(x)
        cell(other)
        second = cell(x)
        cell.train()
        fresh = make(cls).eval()(x)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first, fresh, rtol=0, atol=0)


@pytest.mark.parametrize("cls", CELLS)
def test_eval_forward_between_training_forwards_changes_nothing(cls):
    plain, interrupted = make(cls), make(cls)
    x1, x2, x_eval = inputs(2, 3, 6, 6), inputs(2, 3, 6, 6, seed=2), inputs(4, 3, 10, 10, seed=3)
    with torch.no_grad():
        plain(x1)
        expected = plain(x2)
        interrupted(x1)
        stored = [s.clone() for s in interrupted.states]
        interrupted.eval()
        interrupted(x_eval)  # another batch size and spatial size: eval never looks at the state
        interrupted.train()
        for before, after in zip(stored, interrupted.states):
            torch.testing.assert_close(before, after, rtol=0, atol=0)
        got = interrupted(x2)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("cls", CELLS)
def test_reset_gives_zeros(cls):
    cell = make(cls)
    x1, x2 = inputs(2, 3, 6, 6), inputs(2, 3, 6, 6, seed=2)
    with torch.no_grad():
        cell(x1)
        cell.reset_state()
        assert cell.states is None
        after_reset = cell(x2)
    torch.testing.assert_close(after_reset, zero_state_output(cell, x2), rtol=0, atol=0)


@pytest.mark.parametrize("cls", CELLS)
def test_reset_states_resets_every_cell_in_a_model(cls):
    model = nn.Sequential(make(cls, 3, 4), nn.ReLU(), nn.Sequential(make(cls, 4, 5)))
    with torch.no_grad():
        model(inputs(2, 3, 6, 6))
    assert model[0].states is not None and model[2][0].states is not None
    assert reset_states(model) == 2
    assert model[0].states is None and model[2][0].states is None
    with pytest.raises(TypeError, match="model"):
        reset_states("not a module")


def test_smaller_batch_uses_the_first_rows():
    cell = make(BConvCell)
    x_big, x_small = inputs(4, 3, 6, 6), inputs(2, 3, 6, 6, seed=2)
    with torch.no_grad():
        cell(x_big)
        state = cell.states[0].clone()
        got = cell(x_small)
        expected, _ = v1_step(cell, x_small, state[:2])
    torch.testing.assert_close(got, expected)
    assert cell.states[0].shape[0] == 2


def test_larger_batch_pads_the_state_with_zeros():
    cell = make(BConvCell)
    x_small, x_big = inputs(2, 3, 6, 6), inputs(4, 3, 6, 6, seed=2)
    with torch.no_grad():
        cell(x_small)
        state = cell.states[0].clone()
        got = cell(x_big)
        expected, _ = v1_step(cell, x_big, torch.cat([state, torch.zeros_like(state)]))
    torch.testing.assert_close(got, expected)


def test_v2_batch_change_fits_both_states():
    cell = make(BConvCellV2)
    with torch.no_grad():
        cell(inputs(4, 3, 6, 6))
        c, hs = (s.clone() for s in cell.states)
        x = inputs(3, 3, 6, 6, seed=2)
        expected, _, _ = v2_step(cell, x, c[:3], hs[:3])
        torch.testing.assert_close(cell(x), expected)
        x = inputs(5, 3, 6, 6, seed=3)
        c, hs = (s.clone() for s in cell.states)
        pad = (0, 0, 0, 0, 0, 0, 0, 2)
        expected, _, _ = v2_step(cell, x, F.pad(c, pad), F.pad(hs, pad))
        torch.testing.assert_close(cell(x), expected)


@pytest.mark.parametrize("cls", CELLS)
def test_spatial_change_without_reset_is_an_error(cls):
    cell = make(cls)
    with torch.no_grad():
        cell(inputs(2, 3, 8, 8))
        with pytest.raises(RuntimeError, match=r"spatial size \(6, 6\).*reset_state"):
            cell(inputs(2, 3, 6, 6))
        cell.reset_state()
        assert cell(inputs(2, 3, 6, 6)).shape == (2, 4, 6, 6)


@pytest.mark.parametrize("cls", CELLS)
def test_state_is_not_in_state_dict(cls):
    cell = make(cls)
    with torch.no_grad():
        cell(inputs(2, 3, 6, 6))
    expected = {"conv.weight"} | ({"recover.weight"} if cls is BConvCellV2 else set())
    assert set(cell.state_dict()) == expected
    assert not list(cell.buffers())
    twin = cls(3, 4)
    twin.load_state_dict(cell.state_dict())
    assert twin.states is None


@pytest.mark.parametrize("cls", CELLS)
def test_state_follows_autocast_dtype(cls):
    cell = make(cls)
    x = inputs(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = cell(x)
        y2 = cell(x)
    assert y.dtype == y2.dtype == torch.bfloat16
    assert all(s.dtype == torch.bfloat16 for s in cell.states)
    y3 = cell(x)  # float32 forward with the bfloat16 state
    assert y3.dtype == torch.float32
    assert all(s.dtype == torch.float32 for s in cell.states)


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_cell_in_other_dtypes(cls, dtype):
    cell = make(cls, dtype=dtype)
    x = inputs(2, 3, 6, 6, dtype=dtype)
    cell(x)
    y = cell(x)
    assert y.dtype == dtype and all(s.dtype == dtype for s in cell.states)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("cls", CELLS)
def test_state_follows_the_input_device(cls, device, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn.conv, "fp32_precision", "ieee")  # cuDNN's TF32 is ~1e-3 off the CPU
    cell = make(cls)
    with torch.no_grad():
        cell(inputs(2, 3, 6, 6))
        state = [s.clone() for s in cell.states]
        cell.to(device)
        x = inputs(2, 3, 6, 6, seed=2)
        y = cell(x.to(device))
        assert y.device.type == device and all(s.device.type == device for s in cell.states)
        cpu_cell = make(cls)
        cpu_cell(inputs(2, 3, 6, 6))
        for s, t in zip(cpu_cell.states, state):
            torch.testing.assert_close(s, t)
        torch.testing.assert_close(y.cpu(), cpu_cell(x), atol=1e-5, rtol=1e-4)


def test_update_fn_is_selectable_and_used():
    calls = []

    def counting_update(gates, c_prev=None):
        calls.append(c_prev is None)
        return reference.bconv_cell_update(gates, c_prev)

    fused, counted = make(BConvCell), make(BConvCell, update_fn=counting_update)
    x = inputs(2, 3, 6, 6)
    with torch.no_grad():
        for _ in range(2):
            torch.testing.assert_close(fused(x), counted(x))
    assert calls == [True, False]
    assert "counting_update" in repr(counted)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(in_ch=0, out_ch=4), ValueError, "in_ch"),
        (dict(in_ch=3, out_ch=2.0), TypeError, "out_ch"),
        (dict(in_ch=3, out_ch=4, stride=0), ValueError, "stride"),
        (dict(in_ch=3, out_ch=4, update_fn="fast"), TypeError, "update_fn"),
    ],
)
@pytest.mark.parametrize("cls", CELLS)
def test_bad_constructor_arguments(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_v2_momentum_is_checked():
    with pytest.raises(ValueError, match="momentum"):
        BConvCellV2(3, 4, momentum=1.5)


@pytest.mark.parametrize("cls", CELLS)
def test_cell_under_torch_compile_matches_eager(cls):
    eager, compiled = make(cls), make(cls)
    fn = torch.compile(compiled, backend="aot_eager", fullgraph=True)
    xs = [inputs(2, 3, 6, 6, seed=s).requires_grad_() for s in range(3)]
    for x in xs:
        torch.testing.assert_close(fn(x), eager(x))
    for a, b in zip(compiled.states, eager.states):
        torch.testing.assert_close(a, b)
    fn(xs[0]).sum().backward()
    eager(xs[0]).sum().backward()
    torch.testing.assert_close(compiled.conv.weight.grad, eager.conv.weight.grad)


@pytest.mark.parametrize("cls", CELLS)
def test_clone_states_gives_private_copies(cls):
    model = nn.Sequential(make(cls), nn.ReLU(), make(cls, in_ch=4))
    assert clone_states(model) == 0  # nothing stored yet
    model(inputs(2, 3, 6, 6))
    before = [[s.data_ptr() for s in m.states] for m in (model[0], model[2])]
    values = [[s.clone() for s in m.states] for m in (model[0], model[2])]
    assert clone_states(model) == 2
    for m, ptrs, vals in zip((model[0], model[2]), before, values):
        assert all(s.data_ptr() != p for s, p in zip(m.states, ptrs))
        for s, v in zip(m.states, vals):
            torch.testing.assert_close(s, v, rtol=0, atol=0)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        clone_states([model])


COMPILE_CASES = [
    pytest.param("cpu", "default", id="cpu-default"),
    *(pytest.param("cuda", mode, id=f"cuda-{mode}", marks=pytest.mark.cuda) for mode in COMPILE_MODES),
]


@pytest.mark.slow
@pytest.mark.parametrize("device, mode", COMPILE_CASES)
@pytest.mark.parametrize("cls", CELLS)
def test_carried_state_under_torch_compile(cls, device, mode, monkeypatch):
    """torch.compile (inductor) in each mode, CUDA graphs included (reduce-overhead, max-autotune): over
    repeated training steps the output, the carried state and the gradients follow the eager cell's,
    with no call between steps; the stored state is never memory a later call overwrites."""
    monkeypatch.setattr(torch.backends.cudnn.conv, "fp32_precision", "ieee")
    for backends in ("max_autotune_gemm_backends", "max_autotune_conv_backends"):  # no template tuning: CUDA graphs
        monkeypatch.setattr(torch._inductor.config, backends, "ATEN")  # are what max-autotune tests here
    torch._dynamo.reset()
    eager, compiled = make(cls).to(device), make(cls).to(device)
    fn = torch.compile(compiled, mode=None if mode == "default" else mode, fullgraph=True)
    for seed in range(4):
        x = inputs(2, 3, 6, 6, seed=seed).to(device)
        y_c = fn(x)
        y_c.sum().backward()
        y_e = eager(x)
        y_e.sum().backward()
        torch.testing.assert_close(y_c, y_e, rtol=1e-5, atol=1e-6)
        for a, b in zip(compiled.states, eager.states):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(compiled.parameters(), eager.parameters()):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)
    held, kept = compiled.states, [s.clone() for s in compiled.states]
    fn(inputs(2, 3, 6, 6, seed=9).to(device)).sum().backward()  # a later step leaves the state it read intact
    for a, b in zip(held, kept):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    compiled.eval()
    with torch.no_grad():
        torch.testing.assert_close(fn(x), eager.eval()(x), rtol=1e-5, atol=1e-6)


def test_carry_state_is_a_private_copy_and_tagged_for_cuda_graphs():
    state = inputs(2, 4, 3, 3)
    copy_ = carry_state(state)
    assert copy_.data_ptr() != state.data_ptr()
    torch.testing.assert_close(copy_, state, rtol=0, atol=0)
    if hasattr(torch.Tag, "cudagraph_unsafe"):
        assert torch.Tag.cudagraph_unsafe in torch.ops.ptl_ext.carry_state.default.tags
    compiled = torch.compile(carry_state, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(state), state, rtol=0, atol=0)
