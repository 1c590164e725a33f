"""Training step (forward + cross-entropy + backward + SGD) of PTL-ResNet-50 vs ResNet-50, and of
PTL-ResNet-50 with the eager reference cell update vs the fused op.

    python -m pytest benchmarks/bench_model.py

Batch 8 at 256×128 on the CPU, batch 32 on a GPU when present. The baseline is the same ResNet-50
(last_stride=1) with the same ReID head, so the ratio is the cost of the side stream alone.

- ``test_train_step``: one benchmark per model; in the summary's ratio column every row is compared
  with the ResNet-50 step (PTL step / backbone step).
- ``test_train_step_interleaved``: each round runs one step of every model in turn, and the ratios
  are medians of per-round ratios, so they hold on a machine whose load drifts during the run.
"""

import statistics
import time

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
BASELINE, FUSED, REFERENCE = MODELS


def _rounds(device):
    return 7 if device == "cpu" else 20


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _gmacs(model, device):
    """Multiply-accumulates (billions) of the convolutions and linear layers for one 256×128 image."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features
        else:  # per output (Conv2d) or input (ConvTranspose2d) position: in·out·k·k / groups
            positions = inputs[0] if isinstance(module, nn.ConvTranspose2d) else output
            kh, kw = module.kernel_size
            total += positions[0, 0].numel() * module.in_channels * module.out_channels * kh * kw // module.groups

    kinds = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 256, 128, device=device))
    model.train()
    for h in handles:
        h.remove()
    return total / 1e9


def _make_step(name, device, batch):
    """``(step, note)``: a closure running one SGD training step of model ``name``, and a size note."""
    torch.manual_seed(0)
    model = MODELS[name]().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, 256, 128, generator=gen).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    params = sum(p.numel() for p in model.parameters())
    note = f"{params / 1e6:.1f} M parameters, {_gmacs(model, device):.2f} GMAC/image"
    reset_states(model)

    def step():
        loss = nn.functional.cross_entropy(model(images), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        assert torch.isfinite(loss)

    return step, note


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-B{c[1]}")
def test_train_step(benchmark, case, name):
    device, batch = case
    step, note = _make_step(name, device, batch)
    benchmark.group = f"train step {device} B={batch} 256x128"
    benchmark.extra_info.update(impl=name, candidate=name == BASELINE, note=note)
    benchmark.pedantic(step, rounds=_rounds(device), warmup_rounds=2, iterations=1)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-B{c[1]}")
def test_train_step_interleaved(benchmark, case):
    device, batch = case
    steps = {name: _make_step(name, device, batch)[0] for name in MODELS}
    times = {name: [] for name in MODELS}

    def one_round():
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)

    warmup = 1
    benchmark.group = f"train step {device} B={batch} 256x128 interleaved"
    benchmark.pedantic(one_round, rounds=_rounds(device), warmup_rounds=warmup, iterations=1)

    def ratio(a, b):
        return statistics.median(x / y for x, y in zip(times[a][warmup:], times[b][warmup:]))

    medians = {name: statistics.median(t[warmup:]) * 1e3 for name, t in times.items()}
    ptl_ratio, update_ratio = ratio(FUSED, BASELINE), ratio(REFERENCE, FUSED)
    benchmark.extra_info.update(
        impl="one step of each model",
        median_ms=medians,
        ptl_over_resnet50=ptl_ratio,
        reference_over_fused=update_ratio,
        note=f"PTL/ResNet-50 {ptl_ratio:.2f}x, reference/fused update {update_ratio:.2f}x "
        f"(medians ms: {', '.join(f'{k} {v:.0f}' for k, v in medians.items())})",
    )
