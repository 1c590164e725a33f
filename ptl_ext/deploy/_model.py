"""The one place the deploy tools turn a checkpoint into a network (path, loaded state or module)."""

import os

import torch
from torch import nn

from ..train.checkpoint import load_checkpoint, model_from_checkpoint


def load_network(source, name="checkpoint"):
    """``(model, meta)`` from a checkpoint path, a loaded checkpoint state (dict with ``meta`` and
    ``model``) or an ``nn.Module`` (``meta`` is then ``{}``). The model is on the CPU for a path or
    state, where it is for a module.

    Raises:
        TypeError: ``source`` is none of these; ``ptl_ext.train.CheckpointError``: an unreadable file;
        ValueError: a state without the ``meta`` that ``ptl train`` writes.
    """
    if isinstance(source, nn.Module):
        return source, {}
    if isinstance(source, (str, os.PathLike)):
        state = load_checkpoint(os.fspath(source))
        return model_from_checkpoint(state, f"{name} {os.fspath(source)}"), dict(state["meta"])
    if isinstance(source, dict):
        return model_from_checkpoint(source, name), dict(source.get("meta") or {})
    raise TypeError(
        f"{name} must be a checkpoint path, a loaded checkpoint (dict) or an nn.Module, got {type(source).__name__}"
    )


def meta_input_size(meta):
    """``(H, W)`` a checkpoint was trained at (``meta["height"]``, ``meta["width"]``), or ``None``."""
    if "height" in meta and "width" in meta:
        return int(meta["height"]), int(meta["width"])
    return None


def model_device(model):
    """The device of ``model``'s first parameter (CPU for a module without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
