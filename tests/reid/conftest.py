"""Shared fixtures of the ReID tests: the dense textbook module and random ReID problems."""

import importlib.util
import pathlib

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("reid_textbook", pathlib.Path(__file__).with_name("textbook.py"))
_textbook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_textbook)


@pytest.fixture
def textbook():
    """The dense numpy textbook implementations (tests/reid/textbook.py)."""
    return _textbook


def make_problem(rng, num_q, num_g, num_ids, num_cams, dim=16, duplicates=0, spread=1.0):
    """Random clustered features with pids and camids; ``duplicates`` gallery rows copy other rows."""
    centres = rng.normal(size=(num_ids, dim)) * 2.0
    q_pids = rng.integers(0, num_ids, num_q)
    g_pids = rng.integers(0, num_ids, num_g)
    qf = (centres[q_pids] + spread * rng.normal(size=(num_q, dim))).astype(np.float32)
    gf = (centres[g_pids] + spread * rng.normal(size=(num_g, dim))).astype(np.float32)
    for _ in range(duplicates):
        src, dst = rng.integers(0, num_q + num_g, 2)
        if dst < num_g and src != num_q + dst:
            gf[dst] = qf[src] if src < num_q else gf[src - num_q]
            g_pids[dst] = q_pids[src] if src < num_q else g_pids[src - num_q]
    return dict(
        qf=qf,
        gf=gf,
        q_pids=q_pids,
        g_pids=g_pids,
        q_camids=rng.integers(0, num_cams, num_q),
        g_camids=rng.integers(0, num_cams, num_g),
    )


@pytest.fixture
def problem():
    """``problem(seed, num_q, num_g, num_ids, num_cams, dim=16, duplicates=0)`` -> dict of numpy arrays."""
    return lambda seed, *args, **kwargs: make_problem(np.random.default_rng(seed), *args, **kwargs)
