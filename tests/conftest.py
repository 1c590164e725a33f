"""Suite-wide: tests marked ``cuda`` need a CUDA device and are skipped without one.

Mark every test that touches a GPU with ``@pytest.mark.cuda`` (or a ``pytest.param(..., marks=
pytest.mark.cuda)`` case), so that ``pytest -m cuda`` selects exactly the GPU tests.

``PTL_EXT_TEST_DEADLINE`` (Unix seconds; set by scripts/gpu_check.sh): the tests marked ``cuda`` run
first, and a test that would start after the deadline is skipped with a reason starting ``deadline:``,
so a time-boxed run ends by itself and its JUnit file says how far it got.
"""

import os
import time

import pytest
import torch


def _deadline():
    value = os.environ.get("PTL_EXT_TEST_DEADLINE")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise pytest.UsageError(f"PTL_EXT_TEST_DEADLINE must be Unix seconds, got {value!r}") from None


def pytest_collection_modifyitems(config, items):
    if _deadline() is not None:
        items.sort(key=lambda item: "cuda" not in item.keywords)  # stable: the GPU tests first, in order
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    deadline = _deadline()
    if deadline is not None and time.time() > deadline:
        pytest.skip("deadline: PTL_EXT_TEST_DEADLINE passed before this test started")
