"""The cells name their input and what they expect instead of reporting an internal gates shape or dtype."""

import pytest
import torch

from ptl_ext.nn import BConvCell, BConvCellV2


@pytest.mark.parametrize("cell", [BConvCell(3, 4), BConvCellV2(3, 4)], ids=["v1", "v2"])
def test_wrong_inputs_are_named(cell):
    with pytest.raises(ValueError, match="input x must have shape \\[B, 3, H, W\\], got \\[3, 8, 8\\].*unsqueeze"):
        cell(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match="got \\[2, 5, 8, 8\\]"):
        cell(torch.randn(2, 5, 8, 8))
    with pytest.raises(TypeError, match="input x must be a floating-point tensor .*got torch.int64"):
        cell(torch.zeros(2, 3, 8, 8, dtype=torch.long))
    assert cell(torch.randn(2, 3, 8, 8)).shape == (2, 4, 8, 8)
