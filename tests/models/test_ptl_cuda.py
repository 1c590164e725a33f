"""PTL networks in mixed precision: training steps through the fused cell kernels, on the CPU and a GPU."""

import pytest
import torch
import torch.nn.functional as F

from ptl_ext.models import PTLResNet50


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_ptl_resnet50_amp_training_steps(device, v2):
    """bfloat16 and (CUDA) float16 autocast steps, with a grad scaler for float16: finite loss and
    gradients, the carried states in the autocast dtype, and the loss falling on a repeated batch."""
    torch.manual_seed(0)
    model = PTLResNet50(16, v2=v2).to(device).train()
    x = torch.randn(8, 3, 128, 64, device=device)
    target = torch.arange(8, device=device) % 16
    for dtype in (torch.bfloat16, torch.float16) if device == "cuda" else (torch.bfloat16,):  # no float16 CPU cell
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
        losses = []
        for _ in range(6):
            with torch.autocast(device, dtype=dtype):
                loss = F.cross_entropy(model(x), target)
            assert torch.isfinite(loss)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            assert grads
            if not scaler.is_enabled():  # float16: the scaler skips steps whose scaled gradients overflow
                assert all(torch.isfinite(g).all() for g in grads)
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
        assert all(s.dtype == dtype and s.device.type == device for cell in model.cells for s in cell.states)
        assert losses[-1] < losses[0], losses
