"""Suite-wide: tests marked ``cuda`` need a CUDA device and are skipped without one.

Mark every test that touches a GPU with ``@pytest.mark.cuda`` (or a ``pytest.param(..., marks=
pytest.mark.cuda)`` case), so that ``pytest -m cuda`` selects exactly the GPU tests.
"""

import pytest
import torch


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
