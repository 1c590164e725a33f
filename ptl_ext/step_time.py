"""What one epoch of a run costs on an H200, from the measured step times in ``h200_step_ms.toml``.

An epoch is ``ceil(train images / batch)`` steps (the P×K sampler's epoch is that long up to the
identities' remainders); its time is that many steps at the measured step time. Only measured
``(network, batch, height, width)`` settings give a time; other settings say "not measured".
"""

import math
import os
from dataclasses import dataclass

__all__ = ["STEP_TIMES_FILE", "StepTime", "load_step_times", "epoch_seconds", "describe_epoch_cost"]

STEP_TIMES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "h200_step_ms.toml")


@dataclass(frozen=True)
class StepTime:
    """One measured setting: network ``arch``, ``batch`` images of ``height`` x ``width``, wall-clock step time
    range in ms (``ms_low``..``ms_high``) and, where measured, the kernels' own time of one step (``gpu_busy_ms``)."""

    arch: str
    batch: int
    height: int
    width: int
    ms_low: float
    ms_high: float
    gpu_busy_ms: float | None = None


def load_step_times(path=STEP_TIMES_FILE):
    """``(steps, train_images, source)`` of a step-time file: the :class:`StepTime` list, ``{dataset:
    training images}`` and a line naming where and when the times were measured."""
    import tomllib

    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    steps = [StepTime(**row) for row in data.get("step", [])]
    for step in steps:
        if not 0 < step.ms_low <= step.ms_high:
            raise ValueError(f"{path}: {step.arch} batch {step.batch}: expected 0 < ms_low <= ms_high")
    return steps, dict(data.get("train_images", {})), f"{data.get('source', '?')}, {data.get('date', '?')}"


def epoch_seconds(arch, batch, height, width, dataset, path=STEP_TIMES_FILE):
    """``(steps, low_s, high_s)`` of one training epoch, or ``None`` when the setting was not measured
    (or the dataset's size is not in the file)."""
    steps, images, _ = load_step_times(path)
    step = next((s for s in steps if (s.arch, s.batch, s.height, s.width) == (arch, batch, height, width)), None)
    if step is None or dataset not in images:
        return None
    count = math.ceil(images[dataset] / batch)
    return count, count * step.ms_low / 1000, count * step.ms_high / 1000


def _span(low, high, unit=""):
    return f"{low:.0f}{unit}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}{unit}"


def _duration(low_s, high_s):
    """A range of seconds in minutes (below two hours) or hours with one decimal."""
    if high_s < 7200:
        return _span(low_s / 60, high_s / 60, " min")
    low, high = f"{low_s / 3600:.1f}", f"{high_s / 3600:.1f}"
    return f"{low} h" if low == high else f"{low}-{high} h"


def describe_epoch_cost(arch, batch, height, width, datasets, epochs, path=STEP_TIMES_FILE):
    """One line: the H200 time of an epoch of ``arch`` at ``batch`` x ``height`` x ``width`` on each of
    ``datasets`` (a chain trains several) and of ``epochs`` epochs each, or why it is not known."""
    _, _, source = load_step_times(path)
    parts, total_low, total_high = [], 0.0, 0.0
    for dataset in datasets:
        cost = epoch_seconds(arch, batch, height, width, dataset, path)
        if cost is None:
            return (
                f"H200 epoch time: not measured for {arch} at batch {batch}, {height}x{width}"
                f"{'' if dataset in load_step_times(path)[1] else f' on {dataset}'} (measured settings: {path})"
            )
        steps, low, high = cost
        parts.append(f"{dataset} {steps} steps, {_span(low, high, ' s')}")
        total_low, total_high = total_low + epochs * low, total_high + epochs * high
    return (
        f"H200 epoch time ({arch}, batch {batch}, {height}x{width}, bf16): {'; '.join(parts)} per epoch; "
        f"{epochs} epochs{' per dataset' if len(datasets) > 1 else ''}: {_duration(total_low, total_high)}"
        f" of training steps (evaluation not counted) [{source}]"
    )
