"""Checkpoints: atomic writes (:func:`ptl_ext._io.atomic_write`), an integrity digest, and RNG state capture.

A checkpoint is a ``torch.save`` dict loadable with ``weights_only=True``. It carries a SHA-256
digest of its own content (tensors and plain values), so a file that was truncated or had
bytes changed is refused with :class:`CheckpointError` instead of silently loading bad weights.
"""

import hashlib
import os
import random
import shutil
import warnings

import numpy as np
import torch

from .._io import atomic_write
from ..errors import CheckpointError

FORMAT = "ptl_ext.checkpoint"
VERSION = 1


# Bounds of the digest walk over a loaded checkpoint (a crafted pickle can share one list many times over,
# so a file of a kilobyte can describe 1e10 values): far above what a training checkpoint holds.
MAX_NODES = 500_000
MAX_DEPTH = 100


def _update_digest(h, obj, max_nodes=None, max_bytes=None):
    """Feed ``obj`` to ``h`` depth-first without recursion; ``ValueError`` past :data:`MAX_DEPTH` levels,
    ``max_nodes`` values or ``max_bytes`` tensor bytes (``None``: unbounded)."""
    stack, nodes, size = [(obj, 0)], 0, 0
    while stack:
        obj, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"values nested deeper than {MAX_DEPTH} levels")
        if max_nodes is not None and nodes > max_nodes:
            raise ValueError(f"more than {max_nodes} values (shared references in the pickle?)")
        if isinstance(obj, torch.Tensor):
            size += obj.numel() * obj.element_size()
            if max_bytes is not None and size > max_bytes:
                raise ValueError(f"tensors of more than {max_bytes} bytes in all (shared references in the pickle?)")
            tensor = obj.detach().cpu().contiguous()
            h.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            h.update(f"D{len(obj)}".encode())
            for key, value in reversed(list(obj.items())):
                stack += [(value, depth + 1), (key, depth + 1)]
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
            stack += [(value, depth + 1) for value in reversed(obj)]
        else:
            h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_digest(obj, max_nodes=None, max_bytes=None):
    """SHA-256 hex digest of nested dicts/lists/tuples of tensors and plain values.

    Bounded: ``ValueError`` for values nested deeper than :data:`MAX_DEPTH`, or past ``max_nodes`` values
    or ``max_bytes`` tensor bytes when given (what :func:`load_checkpoint` passes for a file it reads).
    """
    h = hashlib.sha256()
    _update_digest(h, obj, max_nodes, max_bytes)
    return h.hexdigest()


def save_checkpoint(path, state, *copies):
    """Write ``state`` (a dict) to ``path`` atomically: a temp file in the same folder, fsync, rename.

    A crash or a full disk mid-write leaves any previous file at ``path`` intact (a full disk raises
    ``OSError`` "no space left on device while writing PATH"). Each path in ``copies`` gets the same
    file, copied just as atomically after ``path`` is complete (the state is digested and serialised once).
    """
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: state must be a dict, got {type(state).__name__}")
    payload = {"format": FORMAT, "version": VERSION, "state": state, "digest": content_digest(state)}
    atomic_write(path, lambda fh: torch.save(payload, fh))
    for copy in copies:
        with open(path, "rb") as src:
            atomic_write(copy, lambda fh: shutil.copyfileobj(src, fh))


def load_failure(exc):
    """A one-line reason for a failed ``torch.load``: the error's type and first line, without torch's advice
    to retry with ``weights_only=False`` (unsafe on files of unknown origin: never follow it)."""
    first = str(exc).strip().split("\n", 1)[0]
    if not first or "weights_only" in first or "Weights only" in first:
        return f"{type(exc).__name__} while unpickling"
    return f"{type(exc).__name__}: {first}"


def _is(value, kind, expected):
    """``value`` is exactly of type ``kind`` and equal to ``expected`` (a tensor or a bool never compares)."""
    return type(value) is kind and value == expected


def load_checkpoint(path, map_location="cpu"):
    """Read and verify a checkpoint written by :func:`save_checkpoint`; returns its state dict.

    Raises:
        CheckpointError: missing file, unreadable/truncated file, foreign format, or digest mismatch.
    """
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged archives
        reason = load_failure(exc)
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupted?): {reason}") from exc
    if not isinstance(payload, dict) or not _is(payload.get("format"), str, FORMAT):
        raise CheckpointError(f"checkpoint {path} is not a ptl_ext checkpoint (no '{FORMAT}' header)")
    if not isinstance(payload.get("state"), dict):
        raise CheckpointError(f"checkpoint {path} is not a ptl_ext checkpoint (its state is not a dict)")
    if not _is(payload.get("version"), int, VERSION):
        version = " ".join(repr(payload.get("version")).split())[:40]
        raise CheckpointError(f"checkpoint {path} has format version {version}, expected {VERSION}")
    try:  # bounded: a crafted pickle can share one list so often that a walk would never end
        digest = content_digest(payload["state"], MAX_NODES, 4 * os.path.getsize(path) + 2**26)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise CheckpointError(f"checkpoint {path} is not a ptl_ext checkpoint: {exc}") from None
    if not _is(payload.get("digest"), str, digest):
        raise CheckpointError(f"checkpoint {path} is corrupted: its content does not match its SHA-256 digest")
    return payload["state"]


def capture_rng_state():
    """The global RNG states (torch CPU, CUDA devices, numpy, ``random``) as checkpoint-safe values."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": random.getstate(),
    }


def restore_rng_state(state):
    """Restore what :func:`capture_rng_state` returned. CUDA states are restored for the devices visible
    now: with fewer GPUs than at save time, the first ones (with a warning)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        saved, visible = len(state["cuda"]), torch.cuda.device_count()
        if saved > visible:
            warnings.warn(
                f"the checkpoint holds the RNG states of {saved} CUDA devices but {visible} are visible: "
                f"restoring those of the first {visible}",
                RuntimeWarning,
                stacklevel=2,
            )
        for index, rng in enumerate(state["cuda"][:visible]):
            torch.cuda.set_rng_state(rng, index)
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def model_from_checkpoint(state, source="checkpoint"):
    """The network a ``ptl train`` checkpoint describes in its ``meta``, with the checkpoint's weights loaded.

    ``state``: the dict of :func:`load_checkpoint`; ``source`` names it in errors (``"--teacher run/last.pt"``).
    The ``meta`` keys ``arch``, ``num_classes``, ``height``, ``width`` and ``head`` are required; ``v2``
    (old checkpoints: ``ptl_NAME`` with ``v2`` is ``ptl_v2_NAME``), ``last_stride``, ``dropout``,
    ``side_width`` and ``mgn_reductions`` default to ``False``, 1, ``None``, 1 and ``"separate"``. Raises
    ``ValueError`` naming ``source`` when the description is missing or does not fit the weights.
    """
    from ..models import create_model

    meta = state.get("meta") or {}
    missing = [key for key in ("arch", "num_classes", "height", "width", "head") if key not in meta]
    if missing:
        raise ValueError(
            f"{source}: no complete model description (meta lacks {', '.join(missing)}); was it written by ptl train?"
        )
    if not isinstance(state.get("model"), dict):
        raise ValueError(f"{source}: no model weights (state['model'])")

    def build():
        return create_model(
            meta["arch"],
            meta["num_classes"],
            (meta["height"], meta["width"]),
            head=meta["head"],
            last_stride=meta.get("last_stride", 1),
            v2=meta.get("v2", False),
            dropout=meta.get("dropout"),
            side_width=meta.get("side_width", 1.0),
            mgn_reductions=meta.get("mgn_reductions", "separate"),
        )

    try:  # first without memory (meta tensors): a crafted meta cannot make the real build allocate much more
        with torch.device("meta"):  # than the weights the file holds, as their shapes must match
            skeleton = build()
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{source}: cannot rebuild its network: {exc}") from exc
    _check_weights_fit(skeleton, state["model"], source, "its meta's network")
    model = build()
    model.load_state_dict(state["model"])
    return model


def check_dataset_fits(meta, dataset, source="checkpoint"):
    """Refuse to evaluate a network described by checkpoint ``meta`` on ``dataset`` (a
    :class:`~ptl_ext.data.DatasetInfo`) of another task: a ReID network on CIFAR, a classifier on a ReID set,
    or a classifier of another class count.

    Raises ``ValueError`` naming ``source``, what the checkpoint was trained for and the dataset.
    """
    head, classes = meta.get("head"), meta.get("num_classes")
    kind = "classification" if head == "cifar" else "reid"
    trained = f"{meta.get('dataset', 'its training set')} ({kind})"
    if kind != dataset.task:
        raise ValueError(
            f"{source}: its network was trained on {trained} and cannot be evaluated on {dataset.name}, "
            f"a {dataset.task} dataset: evaluate it on a {'classification' if head == 'cifar' else 'ReID'} dataset"
        )
    if dataset.num_classes is not None and classes != dataset.num_classes:
        raise ValueError(
            f"{source}: its network has {classes} classes ({trained}); {dataset.name} has {dataset.num_classes}"
        )


def _check_weights_fit(model, weights, source, what, skip=None):
    """``ValueError`` naming ``source`` when ``weights`` miss keys of ``model``, hold foreign keys or differ in
    shape (keys under the prefix ``skip`` are left out on both sides)."""

    def kept(key):
        return skip is None or not (key == skip or key.startswith(skip + "."))

    own = {k: v for k, v in model.state_dict().items() if kept(k)}
    weights = {k: v for k, v in weights.items() if kept(k)}
    problems = [k for k in own if k not in weights] + [k for k in weights if k not in own]
    problems += [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if problems:
        raise ValueError(
            f"{source}: the checkpoint's network differs from {what}: "
            f"{', '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}"
        )
    return weights


def load_weights_except_head(model, path, option="--init-from"):
    """Load the weights of the ``ptl train`` checkpoint at ``path`` into ``model``, all but the head's.

    Chained fine-tuning: the backbone (and PTL cells) carry over, the head stays freshly initialised for the
    new classes. The head is ``model.head_name`` (``"head"`` for ptl_ext networks). Raises
    :class:`CheckpointError` for a bad file and ``ValueError`` naming ``option`` and ``path`` when the
    networks differ outside the head. Returns ``model``.
    """
    head = getattr(model, "head_name", "head")
    source = f"{option} {os.fspath(path)}"
    weights = _check_weights_fit(model, load_checkpoint(path)["model"], source, "this run's network", skip=head)
    model.load_state_dict(weights, strict=False)
    return model
