"""BConv-Cells: convolutional gates plus the fused latent-state update, with per-sample carried state.

State rules shared by both cells (docs/methods.md):

- The state is per sample, ``[B, K, H', W']``, paired with the next training batch by position,
  and stored **detached** so no gradient crosses batches. It is a plain attribute, not a buffer:
  it is never in ``state_dict`` and stays local to each DDP rank.
- Training forwards consume the state left by the previous training forward and store a new one.
  ``reset_state()`` / :func:`reset_states` clear it; a cleared state reads as zeros.
- Eval forwards start from zeros and leave the training state untouched.
- A smaller batch uses the first ``B`` rows of the state, a larger one pads it with zeros.
  A change of the input's spatial size without a reset is an error.
- The state is moved and cast to the current input's device and dtype before use (AMP works).
- The stored state is ordinary memory that the cell holds: inside a ``torch.compile`` region it is stored
  through :func:`carry_state`, a copy made by an op of its own tagged ``cudagraph_unsafe``, which inductor
  runs outside CUDA graphs. The default mode trains like eager. Training under CUDA graphs
  (``mode="reduce-overhead"`` / ``"max-autotune"``) still fails on a GPU (the backward reads a saved
  activation that a later replay overwrote; seen on an H200 with torch 2.11): not supported yet. Eager
  forwards store the state without a copy.

Options beyond the papers, for ablations (the defaults are the papers' behaviour):

- ``state_mode`` (:data:`STATE_MODES`): ``"carry"`` (default) as above; ``"reset"`` clears the state
  before every training batch (each forward starts from zeros; the state it leaves is only kept for
  inspection); ``"zero"`` never stores a state, so ``c_prev`` is always zero, in training and at test.
  Set it on a built network with :func:`set_state_mode`.
- An eval state: :func:`accumulate_eval_states` averages the state the cells carry over a pass of
  training batches and installs it, so eval forwards start from that fixed state instead of zeros
  (each test feature still depends on its own image only). ``set_eval_states(None)`` returns to zeros.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .. import _checks, ops
from .modes import STATE_MODES

__all__ = [
    "BConvCell",
    "BConvCellV2",
    "LatentStateCell",
    "reset_states",
    "clone_states",
    "carry_state",
    "set_state_mode",
    "accumulate_eval_states",
    "STATE_MODES",
]

_LIB = torch.library.Library("ptl_ext", "FRAGMENT")
_LIB.define(
    "carry_state(Tensor state) -> Tensor",
    tags=(torch.Tag.cudagraph_unsafe,) if hasattr(torch.Tag, "cudagraph_unsafe") else (),
)
_LIB.impl("carry_state", lambda state: state.clone(), "CompositeExplicitAutograd")


@torch.library.register_fake("ptl_ext::carry_state")
def _carry_state_fake(state):
    return torch.empty_like(state)


def carry_state(state):
    """A private copy of ``state`` (any tensor, detached), made by the op ``ptl_ext::carry_state``.

    The op is tagged ``cudagraph_unsafe``, so under ``torch.compile`` with CUDA graphs it runs outside
    them and its result is ordinary memory: what a cell stores for the next batch must outlive the
    graph replay that computed it.
    """
    return torch.ops.ptl_ext.carry_state(state)


def _check_int(name, value, minimum):
    _checks.integer(value, name, minimum=minimum)


def _fit_batch(state, batch):
    """First ``batch`` rows of ``state``, padded with zero rows when ``state`` is shorter."""
    have = state.shape[0]
    if have == batch:
        return state
    if have > batch:
        return state[:batch]
    return F.pad(state, (0, 0, 0, 0, 0, 0, 0, batch - have))


class LatentStateCell(nn.Module):
    """Base class of modules carrying a detached per-sample latent state across training forwards.

    Subclasses call :meth:`_load_states` at the start of a forward and :meth:`_save_states` at its end.
    ``update_fn(gates, c_prev) -> (y, c)`` is the cell update; it defaults to the fused
    :func:`ptl_ext.ops.bconv_cell_update` (pass :func:`ptl_ext.reference.bconv_cell_update` to compare).
    """

    def __init__(self, update_fn=None):
        super().__init__()
        if update_fn is None:
            update_fn = ops.bconv_cell_update
        if not callable(update_fn):
            raise TypeError(f"update_fn must be callable (gates, c_prev) -> (y, c), got {type(update_fn).__name__}")
        self.update_fn = update_fn
        self._states = None
        self._input_hw = None
        self.state_mode = "carry"
        self._eval_states = None
        self._eval_input_hw = None

    @property
    def states(self):
        """Tuple of the stored (detached) state tensors, or ``None`` when reset (zeros)."""
        return self._states

    @property
    def eval_states(self):
        """The fixed state eval forwards start from (tensors ``[1, ...]``), or ``None`` (zeros, the default)."""
        return self._eval_states

    def set_state_mode(self, mode):
        """``"carry"`` (the papers), ``"reset"`` (zeros before every training batch) or ``"zero"`` (never a state)."""
        self.state_mode = _checks.choice(mode, "state_mode", STATE_MODES)
        self.reset_state()

    def set_eval_states(self, states, input_hw=None):
        """Eval forwards start from ``states`` (a tuple like :attr:`states`, each ``[1, ...]``, made from inputs
        of spatial size ``input_hw``) instead of zeros; ``None`` returns to zeros."""
        if states is not None:
            states = tuple(s.detach() for s in states)
            if not states or any(s.dim() < 1 or s.shape[0] != 1 for s in states):
                raise ValueError("set_eval_states: expected a tuple of state tensors with batch size 1")
            input_hw = tuple(input_hw)
        self._eval_states, self._eval_input_hw = states, (input_hw if states is not None else None)

    def reset_state(self):
        """Clear the carried state: the next training forward starts from zeros, any input size is accepted."""
        self._states = None
        self._input_hw = None

    def _check_input(self, x, in_ch):
        """Refuse an input other than a floating-point ``[B, in_ch, H, W]`` tensor, naming what was expected."""
        name = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: input x must be a tensor [B, {in_ch}, H, W], got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != in_ch:
            hint = " (an unbatched image? add a batch dimension: x.unsqueeze(0))" if x.dim() == 3 else ""
            raise ValueError(f"{name}: input x must have shape [B, {in_ch}, H, W], got {list(x.shape)}{hint}")
        if not x.is_floating_point():
            raise TypeError(f"{name}: input x must be a floating-point tensor (e.g. float32), got {x.dtype}")

    def _load_states(self, x):
        """Stored states fitted to ``x``'s batch and device, or ``None`` (zeros). Eval: the eval state, if set.

        Callers cast them to the dtype they compute in (the gates' dtype under autocast).
        """
        if self.state_mode == "zero":
            return None
        if not self.training:
            return self._expanded_eval_states(x)
        if self.state_mode == "reset" or self._states is None:
            return None
        hw = tuple(x.shape[-2:])
        if hw != self._input_hw:
            raise RuntimeError(
                f"{type(self).__name__}: input spatial size {hw} differs from {self._input_hw}, the size the "
                "stored latent state was made for; call reset_state() (or ptl_ext.nn.reset_states(model)) first"
            )
        batch = x.shape[0]
        return tuple(_fit_batch(s, batch).to(device=x.device) for s in self._states)

    def _expanded_eval_states(self, x):
        if self._eval_states is None:
            return None
        if tuple(x.shape[-2:]) != self._eval_input_hw:
            raise RuntimeError(
                f"{type(self).__name__}: input spatial size {tuple(x.shape[-2:])} differs from "
                f"{self._eval_input_hw}, the size the eval state was accumulated at"
            )
        return tuple(s.to(device=x.device).expand(x.shape[0], *s.shape[1:]) for s in self._eval_states)

    def _save_states(self, x, *states):
        """Store detached ``states`` made from input ``x`` (training mode only; never in ``"zero"`` mode)."""
        if self.training and self.state_mode != "zero":
            states = tuple(s.detach() for s in states)
            if torch.compiler.is_compiling():  # never a CUDA graph's output (see the module notes)
                states = tuple(carry_state(s) for s in states)
            self._states = states
            self._input_hw = tuple(x.shape[-2:])

    def clone_state(self):
        """Replace the stored state by copies in ordinary memory (see :func:`clone_states`)."""
        if self._states is not None:
            self._states = tuple(s.clone() for s in self._states)

    def extra_repr(self):
        name = getattr(self.update_fn, "__module__", "?") + "." + getattr(self.update_fn, "__name__", "?")
        return f"update_fn={name}"


class BConvCell(LatentStateCell):
    """BConv-Cell: ``gates = Conv2d(in_ch → 4·out_ch)(x)``, then the fused update with the carried state.

    Input ``[B, in_ch, H, W]`` (any float dtype the op supports; anything else is refused); output
    ``[B, out_ch, ceil(H/stride), ceil(W/stride)]`` for odd ``kernel_size``. The gates see only the current
    input (no hidden-state input, unlike a ConvLSTM).
    """

    def __init__(self, in_ch, out_ch, kernel_size=3, stride=1, update_fn=None):
        super().__init__(update_fn)
        _check_int("in_ch", in_ch, 1)
        _check_int("out_ch", out_ch, 1)
        _check_int("kernel_size", kernel_size, 1)
        _check_int("stride", stride, 1)
        self.in_ch, self.out_ch, self.stride = in_ch, out_ch, stride
        self.conv = nn.Conv2d(in_ch, 4 * out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        self._check_input(x, self.in_ch)
        prev = self._load_states(x)
        gates = self.conv(x)
        c_prev = None if prev is None else prev[0].to(gates.dtype)
        y, c = self.update_fn(gates, c_prev)
        self._save_states(x, c)
        return y


class BConvCellV2(LatentStateCell):
    """PTL-v2 cell: latent state C and a momentum-aggregated hidden state Hs, both carried and detached.

    ``r = ConvTranspose2d(out_ch → in_ch, stride)(Hs_prev)`` recovers the history at ``x``'s size,
    ``gates = Conv2d(2·in_ch → 4·out_ch)(cat[x, r])``, ``y, C = update(gates, C_prev)`` and
    ``Hs = (1 − momentum)·Hs_prev + momentum·y``. Shapes as :class:`BConvCell`. The transposed
    convolution always runs (on zeros when there is no state) so every parameter takes part in each
    step, as DDP requires.
    """

    def __init__(self, in_ch, out_ch, kernel_size=3, stride=1, momentum=0.5, update_fn=None):
        super().__init__(update_fn)
        _check_int("in_ch", in_ch, 1)
        _check_int("out_ch", out_ch, 1)
        _check_int("kernel_size", kernel_size, 1)
        _check_int("stride", stride, 1)
        if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be a number in [0, 1], got {momentum!r}")
        self.in_ch, self.out_ch, self.stride, self.momentum = in_ch, out_ch, stride, float(momentum)
        self.kernel_size = kernel_size
        pad = kernel_size // 2
        self.recover = nn.ConvTranspose2d(out_ch, in_ch, kernel_size, stride, padding=pad, bias=False)
        self.conv = nn.Conv2d(2 * in_ch, 4 * out_ch, kernel_size, stride, padding=pad, bias=False)

    def _out_hw(self, hw):
        pad = self.kernel_size // 2
        return tuple((n + 2 * pad - self.kernel_size) // self.stride + 1 for n in hw)

    def forward(self, x):
        self._check_input(x, self.in_ch)
        prev = self._load_states(x)
        c_prev, hs_prev = (None, None) if prev is None else prev
        if hs_prev is None and not self.training:
            r = x.new_zeros(x.shape)  # eval starts from zeros, and the bias-free `recover` maps zeros to zeros
        else:
            if hs_prev is None:  # training after a reset still runs `recover`, so DDP sees it used
                hs_prev = x.new_zeros((x.shape[0], self.out_ch, *self._out_hw(x.shape[-2:])))
            r = self.recover(hs_prev.to(x.dtype), output_size=list(x.shape[-2:]))
        gates = self.conv(torch.cat([x, r], dim=1))
        if c_prev is not None:
            c_prev = c_prev.to(gates.dtype)
        y, c = self.update_fn(gates, c_prev)
        if self.training:
            hs = (1.0 - self.momentum) * hs_prev.to(y.dtype) + self.momentum * y.detach()
            self._save_states(x, c, hs)
        return y


def reset_states(model):
    """Reset the latent state of every cell in ``model`` (any ``nn.Module``); returns how many were reset."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    count = 0
    for module in model.modules():
        if isinstance(module, LatentStateCell):
            module.reset_state()
            count += 1
    return count


def _cells(model):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return [module for module in model.modules() if isinstance(module, LatentStateCell)]


def set_state_mode(model, mode):
    """Set every cell of ``model`` to state ``mode`` (see :data:`STATE_MODES`); returns how many cells."""
    cells = _cells(model)
    for cell in cells:
        cell.set_state_mode(mode)
    return len(cells)


@torch.no_grad()
def accumulate_eval_states(model, batches):
    """Average the states ``model``'s cells carry over ``batches`` and make them the cells' eval state.

    The cells run in training mode (each batch starts from the state the previous one left, from zeros
    at the first) while every other module runs in eval mode: BatchNorm uses and keeps its running
    statistics, dropout is off; no parameter changes. A cell's eval state is the mean of its state over
    every sample of every batch, ``[1, K, H', W']``. The carried training state is reset before and after.

    Args:
        model: a network with cells (``nn.Module``).
        batches: an iterable of image tensors ``[B, 3, H, W]`` on the model's device, all of one size.
    Returns:
        the number of cells that got an eval state (cells in ``"zero"`` mode carry none and keep zeros).
    """
    cells = _cells(model)
    flags = [(module, module.training) for module in model.modules()]
    reset_states(model)
    model.eval()
    for cell in cells:
        cell.set_eval_states(None)
        cell.train()
    sums, sizes, count = {}, {}, 0
    try:
        for images in batches:
            model(images)
            count += images.shape[0]
            for cell in cells:
                if cell.states is not None:
                    sizes[cell] = cell._input_hw
                    batch_sums = tuple(s.float().sum(0, keepdim=True) for s in cell.states)
                    previous = sums.get(cell)
                    sums[cell] = batch_sums if previous is None else tuple(a + b for a, b in zip(previous, batch_sums))
    finally:
        for module, flag in flags:
            module.training = flag
        reset_states(model)
    if count == 0:
        raise ValueError("accumulate_eval_states: batches yielded no images")
    for cell, total in sums.items():
        cell.set_eval_states(tuple(t / count for t in total), sizes[cell])
    return len(sums)


def clone_states(model):
    """Give every cell in ``model`` a private copy of its carried state; returns how many cells hold one.

    A snapshot that later in-place changes to the old tensors cannot reach (copies ``[B, K, H', W']``
    per cell; a no-op for reset cells). Not needed under ``torch.compile``'s default mode (a compiled forward
    stores the state through ``ptl_ext::carry_state``); training under CUDA graphs (``reduce-overhead``,
    ``max-autotune``) does not work yet (README, "Building with CUDA").
    """
    count = 0
    for module in _cells(model):
        if module.states is not None:
            module.clone_state()
            count += 1
    return count
