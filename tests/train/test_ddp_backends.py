"""DistributedDataParallel in a one-process group, per backend: gloo on the CPU (CI) and NCCL on one GPU
(multi-GPU cannot be tried here). The same body runs on both: a PTL-v2 network (cells that carry state,
`recover` convolutions that run on zeros after a reset) trains in step with an unwrapped twin."""

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from ptl_ext.models import create_model
from ptl_ext.nn import reset_states

BACKENDS = [
    pytest.param("gloo", "cpu", id="gloo-cpu"),
    pytest.param("nccl", "cuda", id="nccl-cuda", marks=pytest.mark.cuda),
]


@pytest.mark.parametrize("backend, device", BACKENDS)
def test_ddp_world_size_one_trains_like_the_plain_network(tmp_path, backend, device, monkeypatch):
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    if device == "cuda":  # deterministic kernels in full float32: what remains is a real DDP difference
        monkeypatch.setattr(torch.backends.cudnn.conv, "fp32_precision", "ieee")
        monkeypatch.setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee")
        monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        # cuBLAS reads it when a handle's workspace is made (maybe earlier in this process); torch checks it
        monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.set_device(0)
    dist.init_process_group(backend, init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        if device == "cuda":  # warn only: a few CUDA backward kernels (pooling) have no deterministic twin
            torch.use_deterministic_algorithms(True, warn_only=True)
        assert dist.get_backend() == backend
        torch.manual_seed(0)
        plain = create_model("ptl_v2_resnet34", 8, (64, 32), dropout=0.0).to(device).train()
        twin = create_model("ptl_v2_resnet34", 8, (64, 32), dropout=0.0).to(device).train()
        twin.load_state_dict(plain.state_dict())
        wrapped = DistributedDataParallel(twin, device_ids=[0] if device == "cuda" else None)
        opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in (plain, twin)]
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(4, 3, 64, 32, generator=gen).to(device)
        target = torch.tensor([0, 1, 2, 3], device=device)
        for step in range(3):
            if step == 2:  # a reset: the cells start from zeros, every parameter still takes part
                reset_states(plain), reset_states(twin)
            losses = []
            for model, opt in zip((plain, wrapped), opts):
                loss = F.cross_entropy(model(x), target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
            torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-5)
            assert all(p.grad is not None for p in twin.parameters())  # DDP saw every parameter used
        for a, b in zip(twin.state_dict().values(), plain.state_dict().values()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        for cell_a, cell_b in zip(twin.cells, plain.cells):
            assert all(s.device.type == device for s in cell_a.states)
            for s, t in zip(cell_a.states, cell_b.states):
                torch.testing.assert_close(s, t, rtol=1e-4, atol=1e-5)
        assert not any("state" in key for key in twin.state_dict())  # carried state stays out of DDP's buffers
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
        dist.destroy_process_group()
