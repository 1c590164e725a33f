import os
import random

import numpy as np
import pytest
import torch

from ptl_ext.train import CheckpointError, load_checkpoint, save_checkpoint
from ptl_ext.train.checkpoint import capture_rng_state, content_digest, restore_rng_state


def make_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(64, 32)
    return {
        "model": model.state_dict(),
        "epoch": 3,
        "history": [{"loss": 1.25, "mAP": None}],
        "half": torch.ones(3, dtype=torch.bfloat16),
        "rng": capture_rng_state(),
    }


def test_roundtrip(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert loaded["epoch"] == 3 and loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    assert content_digest(loaded) == content_digest(state)
    assert [f for f in os.listdir(tmp_path)] == ["c.pt"]  # no temp file left behind


def test_copies_get_the_same_file(tmp_path):
    state = make_state()
    save_checkpoint(tmp_path / "last.pt", state, tmp_path / "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "last.pt").read_bytes()
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 3
    assert sorted(os.listdir(tmp_path)) == ["best.pt", "last.pt"]  # no temp file left behind


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1})
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.pt"]


def test_flipped_byte_is_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_state())
    data = bytearray(path.read_bytes())
    # flip a byte inside the weight storage (torch's zip reader does not check CRCs)
    weight = make_state()["model"]["weight"].numpy().tobytes()
    offset = bytes(data).find(weight[:64])
    assert offset > 0
    data[offset + 100] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match its SHA-256 digest"):
        load_checkpoint(path)


def test_truncated_missing_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, make_state())
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(CheckpointError, match="unreadable"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a ptl_ext checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(TypeError, match="state must be a dict"):
        save_checkpoint(path, [1, 2])


def test_rng_state_roundtrip_through_a_checkpoint(tmp_path):
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    save_checkpoint(tmp_path / "r.pt", {"rng": capture_rng_state()})
    expected = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    torch.rand(10), np.random.rand(7), random.random()
    restore_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]


def test_rng_restore_with_fewer_visible_gpus_than_saved(monkeypatch):
    """A run saved on 3 GPUs resumed where 1 is visible: the first device's state is restored (with a
    warning), not a failure in set_rng_state_all. CUDA is mocked, so this runs without a GPU."""
    restored = []
    state = capture_rng_state()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    saved = [torch.full((8,), i, dtype=torch.uint8) for i in range(3)]
    state["cuda"] = saved
    with pytest.warns(RuntimeWarning, match="RNG states of 3 CUDA devices but 1 are visible"):
        restore_rng_state(state)
    assert len(restored) == 1 and restored[0][1] == 0 and torch.equal(restored[0][0], saved[0])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # more visible than saved: those saved
    restored.clear()
    restore_rng_state(state)
    assert [d for _, d in restored] == [0, 1, 2]
