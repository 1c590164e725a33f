"""Fuzzing checkpoint and config files (random and structured mutations, about 5 s each): every outcome is a
correct load or a clean one-line user error, never another exception or a hang.

``PTL_FUZZ_SECONDS`` and ``PTL_FUZZ_SEED`` run it longer or elsewhere; a failure names the mutated file's content
in its assertion (rerun with the same seed to reproduce it)."""

import io
import math
import os
import random
import time
import zipfile

import pytest
import torch
from torch import nn

from ptl_ext.cli import parse_args
from ptl_ext.errors import CheckpointError, UserError
from ptl_ext.train import load_checkpoint, save_checkpoint
from ptl_ext.train.checkpoint import FORMAT, VERSION, content_digest

pytestmark = pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")

SECONDS = float(os.environ.get("PTL_FUZZ_SECONDS", "5"))  # per test; longer runs: PTL_FUZZ_SECONDS=600
SEED = int(os.environ.get("PTL_FUZZ_SEED", "0"))  # another seed explores other mutations


def budget(seconds=SECONDS):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield


def byte_mutation(data, rng):
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        data = data[: rng.randrange(len(data))]
    elif kind == 2:
        at = rng.randrange(len(data))
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    else:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 64)]
    return bytes(data)


def rewrite_pickle(data, rng):
    """The archive with its data.pkl byte-mutated (structure kept, pickle opcodes damaged)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            dst.writestr(info, byte_mutation(body, rng) if info.filename.endswith("data.pkl") else body)
    return out.getvalue()


def strange_value(rng, depth=0):
    choices = [
        lambda: rng.choice([0, -1, 2**63, 10**30, 1.5, math.nan, math.inf, True, None, "", "x" * 100]),
        lambda: torch.zeros(rng.choice([(0,), (2, 3), (1,)]), dtype=rng.choice([torch.float32, torch.int64])),
    ]
    if depth < 3:
        choices.append(lambda: [strange_value(rng, depth + 1) for _ in range(rng.randint(0, 3))])
        choices.append(lambda: {rng.choice(["model", "meta", "epoch", 1, "k"]): strange_value(rng, depth + 1)})
    return rng.choice(choices)()


def structured_payload(state, rng):
    payload = {"format": FORMAT, "version": VERSION, "state": state, "digest": content_digest(state)}
    kind = rng.randrange(5)
    if kind == 0:
        del payload[rng.choice(list(payload))]
    elif kind == 1:
        payload[rng.choice(list(payload))] = strange_value(rng)
    elif kind == 2:
        payload["state"] = {**state, rng.choice(["model", "x", "meta"]): strange_value(rng)}
    elif kind == 3:
        payload = strange_value(rng)
    else:
        payload["digest"] = content_digest(payload["state"])  # consistent: a correct load
    return payload


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    torch.manual_seed(0)
    state = {"model": nn.Linear(3, 2).state_dict(), "epoch": 2, "history": [{"loss": 0.5}], "meta": {"arch": "x"}}
    path = tmp_path_factory.mktemp("fuzz") / "last.pt"
    save_checkpoint(str(path), state)
    return state, path.read_bytes()


def check_load(path, expected_digest=None):
    try:
        state = load_checkpoint(str(path))
    except CheckpointError as exc:
        assert "\n" not in str(exc)
        return "refused"
    if expected_digest is not None:
        assert content_digest(state) == expected_digest
    return "loaded"


def test_fuzz_checkpoint_bytes(original, tmp_path):
    state, data = original
    rng, outcomes = random.Random(SEED), {"refused": 0, "loaded": 0}
    path = tmp_path / "mutated.pt"
    for _ in budget():
        path.write_bytes(rewrite_pickle(data, rng) if rng.random() < 0.5 else byte_mutation(data, rng))
        outcomes[check_load(path, content_digest(state))] += 1
    assert outcomes["refused"] > 10, outcomes


def test_fuzz_checkpoint_structure(original, tmp_path):
    state, _ = original
    rng, outcomes = random.Random(SEED + 1), {"refused": 0, "loaded": 0}
    path = tmp_path / "structured.pt"
    for _ in budget():
        payload = structured_payload(state, rng)
        torch.save(payload, str(path))
        consistent = isinstance(payload, dict) and payload.get("state") is state
        outcomes[check_load(path, content_digest(state) if consistent else None)] += 1
    assert outcomes["refused"] > 10 and outcomes["loaded"] > 0, outcomes


OPTIONS = ["epochs", "lr", "p", "k", "height", "width", "arch", "dataset", "seed", "loss", "save_every", "overwrite"]


def toml_value(rng):
    return rng.choice(
        ["1", "0", "-5", "1e9", "nan", "inf", "1.5", "true", '"x"', '""', "[1, 2]", "{a = 1}", "99999999999999999999"]
    )


def config_text(rng):
    lines = []
    for _ in range(rng.randint(0, 5)):
        key = rng.choice([*OPTIONS, "unknown_key", "step-size", "paper.mAP", "a.b.c"])
        lines.append(f"{key} = {toml_value(rng)}")
    if rng.random() < 0.3:
        lines.append(rng.choice(["[paper]", "[train]", "[paper.x]"]))
        lines.append(f"{rng.choice(['mAP', 'note', 'rank1', 'bogus'])} = {toml_value(rng)}")
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.3:
        text = byte_mutation(text.encode() or b"x", rng).decode("utf-8", "replace")
    return text


def test_fuzz_config_files(tmp_path):
    rng, outcomes = random.Random(SEED + 2), {"refused": 0, "parsed": 0}
    config = tmp_path / "run.toml"
    for _ in budget():
        config.write_text(config_text(rng))
        suffix = rng.choice([".toml", ".yaml"]) if rng.random() < 0.2 else ".toml"
        path = config.with_suffix(suffix)
        config.rename(path)
        try:
            parse_args(["train", "--root", "r", "--out", str(tmp_path / "o"), "--config", str(path)])
            outcomes["parsed"] += 1
        except (UserError, ValueError, OSError) as exc:  # what ptl prints as one line (exit 2)
            assert str(exc).strip(), type(exc)
            outcomes["refused"] += 1
        path.rename(config)
    assert outcomes["refused"] > 10 and outcomes["parsed"] > 0, outcomes
