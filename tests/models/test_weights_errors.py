"""A bad --pretrained file is named and refused without torch's unsafe advice."""

import pytest
import torch

from ptl_ext.errors import UserError, WeightsFileError
from ptl_ext.models.weights import read_state_dict
from ptl_ext.train import save_checkpoint


@pytest.mark.parametrize(
    "content",
    [b"\x80\x04garbage" * 50, bytes(range(256)) * 8, b"GIF89a" + b"\x00" * 100],
    ids=["pickle-like", "bytes", "gif"],
)
def test_garbage_is_not_a_state_dict(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError, match=f"pretrained file '{path}' is not a state dict") as info:
        read_state_dict(path)
    assert "weights_only" not in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, (UserError, ValueError))


def test_non_tensor_content_training_checkpoints_and_non_finite_values(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"epoch": 3, "name": "resnet"}, path)
    with pytest.raises(WeightsFileError, match="does not hold a dict of tensors"):
        read_state_dict(path)
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}})
    with pytest.raises(WeightsFileError, match="is a ptl_ext training checkpoint"):
        read_state_dict(path)
    torch.save({"conv1.weight": torch.zeros(2), "fc.bias": torch.tensor([1.0, float("nan")])}, path)
    with pytest.raises(WeightsFileError, match="tensor fc.bias holds NaN or infinite values"):
        read_state_dict(path)
    torch.save({"bn.num_batches_tracked": torch.tensor(3), "fc.bias": torch.ones(2)}, path)
    assert set(read_state_dict(path)) == {"bn.num_batches_tracked", "fc.bias"}
