"""Loading local (torchvision-format) checkpoints into the project's backbones, with clear errors."""

import os
import re
import warnings

import torch

from ..errors import WeightsFileError, WeightsMismatchError

__all__ = ["load_pretrained", "load_state", "read_state_dict", "densenet_legacy_keys"]

_MAX_LISTED = 5
_LEGACY_DENSE_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def read_state_dict(path):
    """Read a state dict from a local checkpoint file.

    Accepts a plain state dict or one wrapped under ``"state_dict"`` / ``"model"``; a DDP
    ``"module."`` prefix is stripped. Returns ``{name: tensor}`` on the CPU.

    Raises :class:`~ptl_ext.errors.WeightsFileError` (a ``ValueError``) naming the file when it cannot be
    read as a state dict (garbage, another kind of file, a ptl_ext training checkpoint) or when a
    floating-point tensor holds NaN or infinite values (naming the tensor).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"pretrained must be a path to a local checkpoint (str or PathLike), got {type(path).__name__}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained checkpoint not found: {os.fspath(path)!r}")
    name = os.fspath(path)
    try:
        with warnings.catch_warnings():  # torch's pickle-protocol notes on a garbage file only add noise
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # garbage gives UnpicklingError, KeyError, RuntimeError, EOFError, ...
        raise WeightsFileError(
            f"pretrained file {name!r} is not a state dict: torch.load cannot read it "
            f"({type(exc).__name__}); give a torchvision-format checkpoint of the "
            "backbone"
        ) from None
    if isinstance(state, dict) and state.get("format") == "ptl_ext.checkpoint":
        raise WeightsFileError(
            f"pretrained file {name!r} is a ptl_ext training checkpoint, not a backbone state dict: "
            "start from its weights with --init-from (or resume it)"
        )
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsFileError(f"pretrained file {name!r} is not a state dict: it does not hold a dict of tensors")
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WeightsFileError(f"pretrained file {name!r}: tensor {key} holds NaN or infinite values")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def densenet_legacy_keys(state):
    """Rename old DenseNet keys (``denselayer1.norm.1.weight``) to the current form (``denselayer1.norm1.weight``)."""
    renamed = {}
    for key, value in state.items():
        match = _LEGACY_DENSE_KEY.match(key)
        renamed[match.group(1) + match.group(2) if match else key] = value
    return renamed


def _listing(title, keys):
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED]) + (
        f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else ""
    )
    return f"{title} ({len(keys)}): {shown}"


def load_pretrained(model, path, *, rename=None, classifier=None):
    """Load the checkpoint at ``path`` into ``model`` strictly, raising on any mismatch.

    Args:
        model: the ``nn.Module`` to fill in place.
        path: local checkpoint file (see :func:`read_state_dict`).
        rename: optional ``state -> state`` key mapping applied first (e.g. :func:`densenet_legacy_keys`).
        classifier: key prefix of the model's classifier (``"fc."``); where its shapes differ from the
            checkpoint's (another number of classes) the model keeps its freshly initialised classifier.

    BatchNorm ``num_batches_tracked`` counters absent from older checkpoints are not required.
    Raises :class:`~ptl_ext.errors.WeightsMismatchError` (a ``RuntimeError``; one line for the CLI) listing
    the first missing keys, unexpected keys and shape mismatches.
    Returns ``model``.
    """
    state = read_state_dict(path)
    if rename is not None:
        state = rename(state)
    return load_state(model, state, path, classifier=classifier)


def load_state(model, state, path, *, classifier=None, optional_classifier=False):
    """Load the state dict ``state`` (read from ``path``, named in errors) into ``model`` strictly.

    As :func:`load_pretrained`; with ``optional_classifier`` a ``state`` without any ``classifier`` key (a
    backbone trunk) is accepted too, the model keeping its freshly initialised classifier. Returns ``model``.
    """
    own = model.state_dict()
    if optional_classifier and classifier is not None and not any(k.startswith(classifier) for k in state):
        state = {**state, **{k: v for k, v in own.items() if k.startswith(classifier)}}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    head_differs = classifier is not None and any(
        k.startswith(classifier) and k in state and state[k].shape != v.shape for k, v in own.items()
    )
    if head_differs:
        state = {k: v for k, v in state.items() if not k.startswith(classifier)}
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = [
            _listing(title, keys)
            for title, keys in (
                ("missing keys", missing),
                ("unexpected keys", unexpected),
                ("shape mismatches (checkpoint vs model)", mismatched),
            )
            if keys
        ]
        shared = len(set(own) & set(state))
        hint = " (no key in common: weights of another architecture?)" if shared == 0 else ""
        raise WeightsMismatchError(
            f"pretrained checkpoint {os.fspath(path)!r} does not match {type(model).__name__}{hint}: "
            + "; ".join(problems)
        )
    model.load_state_dict(state, strict=False)
    return model
