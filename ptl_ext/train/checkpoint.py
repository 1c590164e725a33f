"""Checkpoints: atomic writes (temp file + rename), an integrity digest, and RNG state capture.

A checkpoint is a ``torch.save`` dict loadable with ``weights_only=True``. It carries a SHA-256
digest of its own content (tensors and plain values), so a file that was truncated or had
bytes changed is refused with :class:`CheckpointError` instead of silently loading bad weights.
"""

import hashlib
import os
import random
import shutil
import tempfile
import warnings

import numpy as np
import torch

FORMAT = "ptl_ext.checkpoint"
VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable, corrupted or not a ptl_ext checkpoint."""


def _update_digest(h, obj):
    if isinstance(obj, torch.Tensor):
        tensor = obj.detach().cpu().contiguous()
        h.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for key, value in obj.items():
            _update_digest(h, key)
            _update_digest(h, value)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for value in obj:
            _update_digest(h, value)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def content_digest(obj):
    """SHA-256 hex digest of nested dicts/lists/tuples of tensors and plain values."""
    h = hashlib.sha256()
    _update_digest(h, obj)
    return h.hexdigest()


def _write_atomically(path, write):
    """Call ``write(file)`` on a temp file in ``path``'s folder, fsync it, then rename it to ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path, state, *copies):
    """Write ``state`` (a dict) to ``path`` atomically: a temp file in the same folder, fsync, rename.

    A crash mid-write leaves any previous file at ``path`` intact. Each path in ``copies`` gets the
    same file, copied just as atomically (the state is digested and serialised once).
    """
    if not isinstance(state, dict):
        raise TypeError(f"save_checkpoint: state must be a dict, got {type(state).__name__}")
    payload = {"format": FORMAT, "version": VERSION, "state": state, "digest": content_digest(state)}
    _write_atomically(path, lambda fh: torch.save(payload, fh))
    for copy in copies:
        with open(path, "rb") as src:
            _write_atomically(copy, lambda fh: shutil.copyfileobj(src, fh))


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
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or corrupted?): {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "state" not in payload:
        raise CheckpointError(f"checkpoint {path} is not a ptl_ext checkpoint (no '{FORMAT}' header)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('version')}, expected {VERSION}")
    if content_digest(payload["state"]) != payload.get("digest"):
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
