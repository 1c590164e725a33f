"""Training step (forward + cross-entropy + backward + SGD) of PTL-ResNet-50 vs ResNet-50, and of
PTL-ResNet-50 with the eager reference cell update vs the fused op.

    python -m pytest benchmarks/bench_model.py

Batch 8 at 256×128 on the CPU, batch 32 on a GPU when present. The baseline is the same ResNet-50
(last_stride=1) with the same ReID head, so the ratio is the cost of the side stream alone. In the
summary's ratio column every row is compared with the ResNet-50 step (PTL step / backbone step);
the reference-update row's note gives its ratio to the fused-op row.
"""

import pytest
import torch
from torch import nn

from ptl_ext import reference
from ptl_ext.models import BackboneNet, PTLResNet50, resnet50
from ptl_ext.nn import reset_states

NUM_CLASSES = 751
CASES = [("cpu", 8)] + ([("cuda", 32)] if torch.cuda.is_available() else [])
MODELS = {
    "resnet50": lambda: BackboneNet(resnet50(last_stride=1).stages(), NUM_CLASSES),
    "ptl_resnet50 fused update": lambda: PTLResNet50(NUM_CLASSES),
    "ptl_resnet50 reference update": lambda: PTLResNet50(NUM_CLASSES, update_fn=reference.bconv_cell_update),
}
_medians = {}


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-B{c[1]}")
def test_train_step(benchmark, case, name):
    device, batch = case
    torch.manual_seed(0)
    model = MODELS[name]().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 256, 128, generator=gen).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    reset_states(model)

    def step():
        loss = nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        return loss.item()

    group = f"train step {device} B={batch} 256x128"
    benchmark.group = group
    benchmark.extra_info.update(impl=name, candidate=name == "resnet50", params=_count(model))
    rounds = 5 if device == "cpu" else 20
    loss = benchmark.pedantic(step, rounds=rounds, warmup_rounds=2, iterations=1)
    assert torch.isfinite(torch.tensor(loss))
    median = benchmark.stats.stats.median
    _medians[(group, name)] = median
    fused = _medians.get((group, "ptl_resnet50 fused update"))
    if name == "ptl_resnet50 reference update" and fused is not None:
        benchmark.extra_info["note"] = f"{median / fused:.2f}x the fused-op PTL step"
    benchmark.extra_info.setdefault("note", f"{_count(model) / 1e6:.1f} M parameters")
