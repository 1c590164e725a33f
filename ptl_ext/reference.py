"""Pure-PyTorch twins of every compiled op: the ground truth for tests and benchmarks."""

import torch


def bconv_cell_update(gates, c_prev=None):
    """BConv-Cell gate/state update, eager PyTorch.

    Args:
        gates: ``[B, 4K, H, W]`` pre-activations, channel chunks in order i, f, o, g.
        c_prev: ``[B, K, H, W]`` previous latent state, or ``None`` for zeros.

    Returns:
        ``(y, c)``, each ``[B, K, H, W]`` with the dtype of ``gates``:
        ``c = σ(a_f)·c_prev + σ(a_i)·tanh(a_g)`` and ``y = σ(a_o)·tanh(c)``.
    """
    a_i, a_f, a_o, a_g = gates.chunk(4, dim=1)
    i, f, o, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o), torch.tanh(a_g)
    c = i * g if c_prev is None else f * c_prev + i * g
    y = o * torch.tanh(c)
    return y, c
