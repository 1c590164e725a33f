"""The measuring steps of scripts/gpu_check.sh, one subcommand each, and its summary writer.

    python scripts/gpu_validate.py [--cpu-smoke] env OUT_DIR     # versions, device -> env.json
    python scripts/gpu_validate.py [--cpu-smoke] rerank OUT_DIR  # re-ranking, Market and MSMT17 scale -> rerank.json
    python scripts/gpu_validate.py [--cpu-smoke] cell OUT_DIR    # fused op vs a copy and torch.compile -> cell.json
    python scripts/gpu_validate.py [--cpu-smoke] models OUT_DIR  # a train step of every network -> models.json
    python scripts/gpu_validate.py [--cpu-smoke] sanitize        # small calls of every kernel (compute-sanitizer)
    python scripts/gpu_validate.py summary OUT_DIR               # summary.md, summary.json, failures.md

``--cpu-smoke`` runs the same code on the CPU at small size (timings from the host clock, no peak
memory), so CI exercises every call a GPU run makes (tests/test_gpu_check.py). Every measuring step
rewrites its JSON file after each row, so a step killed by the deadline still leaves the rows it
finished. torch is imported only by the measuring steps: the summary needs none.
"""

import json
import math
import os
import sys
import time
import xml.etree.ElementTree as ET


def _write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _device(smoke):
    return "cpu" if smoke else "cuda"


# ---------------------------------------------------------------- environment


def env_step(out, smoke):
    import torch

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "cpu_smoke": smoke,
        "cpus": os.cpu_count(),
        "devices": [],
    }
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        info["devices"].append(
            {
                "name": p.name,
                "capability": f"{p.major}.{p.minor}",
                "memory_gib": round(p.total_memory / 2**30, 1),
                "multiprocessors": p.multi_processor_count,
            }
        )
    _write_json(os.path.join(out, "env.json"), info)
    print(json.dumps(info, indent=2))
    if not smoke and not info["cuda_available"]:
        sys.exit("torch sees no CUDA device (a CPU-only torch, or CUDA_VISIBLE_DEVICES hides the GPUs)")


# ---------------------------------------------------------------- timing helpers


def _sync(device):
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _device_ms(fn, calls, repeats=5, device="cuda"):
    """Median over ``repeats`` of the time of ``calls`` back-to-back calls, per call (ms): CUDA events on
    a GPU, the host clock on the CPU."""
    import torch

    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(calls):
                fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / calls)
        else:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times.append((time.perf_counter() - t0) * 1e3 / calls)
    return sorted(times)[len(times) // 2]


def _graph_ms(fn, calls, repeats=5, device="cuda"):
    """Per-call device time of ``calls`` calls captured in one CUDA graph and replayed (no launch overhead
    at all); on the CPU, or when ``fn`` cannot be captured, the plain timing of :func:`_device_ms`."""
    import torch

    if device != "cuda":
        return _device_ms(fn, calls, repeats, device)
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
    except RuntimeError:
        return _device_ms(fn, calls, repeats, device)
    return _device_ms(graph.replay, 1, repeats, device) / calls


class _Peak:
    """Peak device memory (GiB) above what was allocated on entry; None on the CPU."""

    def __init__(self, device):
        self.device, self.gib = device, None

    def __enter__(self):
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device == "cuda" and exc[0] is None:
            torch.cuda.synchronize()
            self.gib = round((torch.cuda.max_memory_allocated() - self.base) / 2**30, 3)


# ---------------------------------------------------------------- re-ranking at Market and MSMT17 scale

# name, queries, gallery, dimension, identities, compared with the CPU (the CPU takes minutes at MSMT17)
RERANK_SCALES = [("Market-1501", 3368, 15913, 2048, 751, True), ("MSMT17", 11659, 82161, 2048, 1041, False)]
RERANK_SMOKE = [("smoke", 40, 160, 32, 12, True)]


def _clustered(n, centres, gen, device):
    import torch

    ids = torch.randint(0, centres.shape[0], (n,), generator=gen, device=device)
    return centres[ids].add_(torch.randn(n, centres.shape[1], generator=gen, device=device), alpha=3.5)


def rerank_step(out, smoke):
    import torch

    from ptl_ext.reid import re_ranking
    from ptl_ext.reid.screen import search_format

    device = _device(smoke)
    path = os.path.join(out, "rerank.json")
    result = {"device": device, "search": search_format(device), "rows": []}
    for name, num_q, num_g, dim, ids, compare in RERANK_SMOKE if smoke else RERANK_SCALES:
        gen = torch.Generator(device=device).manual_seed(0)
        centres = torch.randn(ids, dim, generator=gen, device=device)
        qf, gf = _clustered(num_q, centres, gen, device), _clustered(num_g, centres, gen, device)
        re_ranking(qf[:300], gf[:1200])  # warm-up: CUDA context, cuBLAS handles
        _sync(device)
        with _Peak(device) as peak:
            t0 = time.perf_counter()
            got = re_ranking(qf, gf)
            _sync(device)
            seconds = time.perf_counter() - t0
        row = {"name": name, "scale": f"{num_q:,} x {num_g:,}, d = {dim}", "seconds": round(seconds, 3)}
        row["peak_gib_above_features"] = peak.gib
        assert got.shape == (num_q, num_g) and bool(torch.isfinite(got).all()), "re-ranking gave non-finite values"
        result["rows"].append(row)
        _write_json(path, result)
        if compare:
            t0 = time.perf_counter()
            want = re_ranking(qf.cpu(), gf.cpu())
            row["cpu_seconds"] = round(time.perf_counter() - t0, 3)
            row["max_abs_diff_vs_cpu"] = float((got.cpu() - want).abs().max())
            row["match_1e-5"] = row["max_abs_diff_vs_cpu"] <= 1e-5
            _write_json(path, result)
        del qf, gf, got
        if device == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(row))
    bad = [r["name"] for r in result["rows"] if r.get("match_1e-5") is False]
    if bad:
        sys.exit(f"re-ranking on {device} differs from the CPU by more than 1e-5 at {', '.join(bad)}")


# ---------------------------------------------------------------- fused-op rows

CELL_SIZES = [(32, 64, 64, 32), (32, 128, 32, 16), (32, 256, 16, 8)]
CELL_SMOKE_SIZES = [(2, 8, 6, 4), (2, 3, 5, 3)]  # the second: a plane size with a scalar tail
CELL_GOALS = {"pct_of_copy": 85.0, "fwd_bwd_x_compiled": 1.5}


def cell_step(out, smoke):
    import torch

    from ptl_ext import ops, reference

    device = _device(smoke)
    calls = 3 if smoke else 100
    # inductor on a GPU; on the CPU smoke the same compile-and-call path without the C++ build time
    compiled = torch.compile(reference.bconv_cell_update, fullgraph=True, backend="aot_eager" if smoke else "inductor")
    rows = []
    path = os.path.join(out, "cell.json")
    for dtype in (torch.float32, torch.bfloat16) + (() if smoke else (torch.float16,)):  # no float16 CPU kernel
        for size in CELL_SMOKE_SIZES if smoke else CELL_SIZES:
            b, k, h, w = size
            gates = torch.randn(b, 4 * k, h, w, device=device).to(dtype)
            c_prev = torch.randn(b, k, h, w, device=device).to(dtype)
            nbytes = 7 * b * k * h * w * gates.element_size()  # reads gates + c_prev, writes y + c
            src = torch.empty(max(1, nbytes // 2 // 4), device=device)
            dst = torch.empty_like(src)
            row = {"dtype": str(dtype).removeprefix("torch."), "size": list(size), "bytes": nbytes}
            row["fused_ms"] = _graph_ms(lambda: ops.bconv_cell_update(gates, c_prev), calls, device=device)
            row["copy_ms"] = _graph_ms(lambda: dst.copy_(src), calls, device=device)
            row["eager_ms"] = _device_ms(lambda: reference.bconv_cell_update(gates, c_prev), calls, device=device)
            row["compiled_ms"] = _device_ms(lambda: compiled(gates, c_prev), calls, device=device)
            row["fused_gbps"] = round(nbytes / (row["fused_ms"] * 1e-3) / 1e9, 1)
            row["pct_of_copy"] = round(100 * row["copy_ms"] / row["fused_ms"], 1)
            row["x_compiled"] = round(row["compiled_ms"] / row["fused_ms"], 2)
            row["x_eager"] = round(row["eager_ms"] / row["fused_ms"], 2)
            g = gates.detach().clone().requires_grad_(True)
            cp = c_prev.detach().clone().requires_grad_(True)
            dy, dc = torch.randn_like(cp), torch.randn_like(cp)

            def fused_fb():
                y, c = ops.bconv_cell_update(g, cp)
                return torch.autograd.grad((y, c), (g, cp), (dy, dc))

            def compiled_fb():
                y, c = compiled(g, cp)
                return torch.autograd.grad((y, c), (g, cp), (dy, dc))

            row["fused_fwd_bwd_ms"] = _device_ms(fused_fb, max(1, calls // 2), device=device)
            row["compiled_fwd_bwd_ms"] = _device_ms(compiled_fb, max(1, calls // 2), device=device)
            row["fwd_bwd_x_compiled"] = round(row["compiled_fwd_bwd_ms"] / row["fused_fwd_bwd_ms"], 2)
            y, c = ops.bconv_cell_update(gates, c_prev)
            want = reference.bconv_cell_update(gates.float(), c_prev.float())
            errors = [float((got.float() - ref).abs().max()) for got, ref in zip((y, c), want)]
            row["max_abs_err_vs_fp32_reference"] = max(errors)
            assert row["max_abs_err_vs_fp32_reference"] < (1e-5 if dtype == torch.float32 else 0.05), row
            rows.append({key: (round(v, 4) if isinstance(v, float) else v) for key, v in row.items()})
            _write_json(path, {"device": device, "goals": CELL_GOALS, "rows": rows})
            print(json.dumps(rows[-1]))


# ---------------------------------------------------------------- a train step of every network


def model_input_size(info, smoke):
    """The size a network is timed at: its default, 32×32 for the CIFAR DenseNet-BC-100 family; a small
    one of the same shape on the CPU smoke."""
    if info.base == "densenet_bc100":
        return (32, 32)
    if smoke:
        return (96, 32) if info.family == "mgn" else (64, 32)
    return tuple(info.input_size)


def _busy_ms(step, device, steps=2):
    """Time the device itself spends on one ``step()`` (ms): the profiler's self time of every kernel
    (on the CPU smoke: of every CPU op). Eager train steps of deep networks are bound by the host's
    launches, so the wall-clock step time says little about the GPU; this does."""
    from torch.profiler import ProfilerActivity, profile

    activity = ProfilerActivity.CUDA if device == "cuda" else ProfilerActivity.CPU
    with profile(activities=[activity]) as prof:
        for _ in range(steps):
            step()
        _sync(device)
    attr = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    total_us = sum(getattr(e, attr) for e in prof.key_averages())
    return total_us / steps / 1e3


def _train_step_row(name, device, amp, batch, smoke):
    """Build ``name`` on ``device`` and time its AMP train step; the network is freed on return."""
    import torch
    import torch.nn.functional as F

    from ptl_ext.models import count_parameters, create_model, model_info

    info = model_info(name)
    size = model_input_size(info, smoke)
    cifar = info.base == "densenet_bc100"
    num_classes = 10 if cifar else 751
    warmup, calls, repeats = (1, 1, 1) if smoke else (3, 5, 2)
    torch.manual_seed(0)
    with torch.device(device):
        model = create_model(name, num_classes, size, head="cifar" if cifar else "reid").train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = torch.amp.GradScaler(device, enabled=amp == torch.float16)
    x = torch.randn(batch, 3, *size, device=device)
    target = torch.randint(0, num_classes, (batch,), device=device)

    def forward():
        with torch.autocast(device, dtype=amp):
            return F.cross_entropy(model(x), target)

    def step():
        loss = forward()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(warmup):
        step()
    with _Peak(device) as peak:
        ms = _device_ms(step, calls, repeats, device)
        loss = float(step().detach())
    with torch.no_grad():
        fwd_ms = _device_ms(forward, calls, repeats, device)
    return {
        "input": list(size),
        "step_ms": round(ms, 2),
        "busy_ms": round(_busy_ms(step, device, steps=1 if smoke else 2), 2),
        "forward_ms": round(fwd_ms, 2),
        "peak_gib": peak.gib,
        "params": count_parameters(model),
        "loss_finite": math.isfinite(loss),
    }


# the CPU smoke times one network of each kind the table has (plain, PTL, PTL-v2, the 32×32 CIFAR ones);
# building every network of the zoo is the model tests' job
SMOKE_MODELS = ("resnet34", "ptl_resnet34", "ptl_v2_resnet34", "densenet_bc100", "ptl_densenet_bc100")


def models_step(out, smoke, names=None):
    import torch

    from ptl_ext.models import list_models

    device = _device(smoke)
    amp = torch.bfloat16 if smoke or torch.cuda.is_bf16_supported() else torch.float16
    batch = 2 if smoke else 32
    result = {"device": device, "batch": batch, "amp": str(amp).removeprefix("torch."), "nets": {}}
    path = os.path.join(out, "models.json")
    for name in names or (SMOKE_MODELS if smoke else list_models()):
        result["nets"][name] = _train_step_row(name, device, amp, batch, smoke)
        if device == "cuda":
            torch.cuda.empty_cache()
        _write_json(path, result)
        print(name, json.dumps(result["nets"][name]))
    bad = [n for n, r in result["nets"].items() if not r["loss_finite"]]
    if bad:
        sys.exit(f"non-finite training loss: {', '.join(bad)}")


# ---------------------------------------------------------------- small cases for compute-sanitizer


def sanitize_step(smoke):
    """Small calls of every kernel (both cell paths, misaligned views, every dtype, the re-ranking ops on
    CSR matrices) for ``compute-sanitizer`` memcheck and racecheck, each checked against the pure-PyTorch
    reference as it goes; on the CPU smoke, the same calls on the CPU kernels."""
    import torch

    from ptl_ext import ops, reference
    from ptl_ext.reid.rerank import _gallery_index

    device = _device(smoke)
    backward = torch.ops.ptl_ext.bconv_cell_update_backward
    for dtype in (torch.float32, torch.float64, torch.bfloat16) + (() if smoke else (torch.float16,)):
        tol = 1e-5 if dtype in (torch.float32, torch.float64) else 0.05
        for b, k, h, w in ((2, 8, 3, 5), (2, 7, 3, 5), (3, 8, 4, 4)):
            gates = torch.randn(b, 4 * k, h, w, device=device).to(dtype)
            c_prev = torch.randn(b, k, h, w, device=device).to(dtype)
            for g, cp in ((gates, c_prev), (_misaligned(gates), _misaligned(c_prev)), (gates, None)):
                y, c = ops.bconv_cell_update(g, cp)
                want = reference.bconv_cell_update(g.double(), None if cp is None else cp.double())
                for got, ref in zip((y, c), want):
                    assert float((got.double() - ref).abs().max()) < tol, (dtype, (b, k, h, w))
                dg, dcp = backward(g, cp, c, torch.ones_like(y), None, cp is not None)
                _sync(device)
                assert torch.isfinite(dg).all() and (dcp is None or torch.isfinite(dcp).all())
    x = torch.randn(300, 16)
    norms = x.pow(2).sum(1)
    _, idx, rowmax = ops.rerank_knn(x, norms, 9, 64)
    on = lambda t: t.to(device)  # noqa: E731
    v = ops.rerank_sparse_v(on(x), on(rowmax), on(idx), 8, 4)
    qe = ops.rerank_query_expansion(v, on(idx), 3)
    inv = _gallery_index(qe, 50)
    dist = ops.squared_euclidean(on(x[:50]), on(x[50:]), on(norms[:50]), on(norms[50:]))
    got = ops.rerank_jaccard(dist, on(rowmax[:50]), qe, 0, inv, 0.3)
    v_ref = reference.rerank_sparse_v(x, rowmax, idx, 8, 4)
    qe_ref = reference.rerank_query_expansion(v_ref, idx, 3)
    want = reference.rerank_jaccard(dist.cpu(), rowmax[:50], qe_ref, 0, _gallery_index(qe_ref, 50), 0.3)
    _sync(device)
    assert float((got.cpu() - want).abs().max()) < 1e-5
    print(f"sanitize cases ran on {device}")


def _misaligned(t):
    import torch

    view = torch.empty(t.numel() + 1, device=t.device, dtype=t.dtype)[1:].view(t.shape)
    return view.copy_(t)


# ---------------------------------------------------------------- summary


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


DEADLINE_SKIP = "deadline:"  # start of the skip reason tests/conftest.py gives once PTL_EXT_TEST_DEADLINE passed


def junit_counts(path):
    """Counts of a pytest JUnit file (``None`` when absent or unreadable), with the failed tests'
    ``(id, first line of the message)`` and how many tests the deadline skipped."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    counts = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0, "deadline_skipped": 0, "failures": []}
    for case in root.iter("testcase"):
        counts["tests"] += 1
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        if outcome is None:
            counts["passed"] += 1
        elif outcome.tag == "skipped":
            counts["skipped"] += 1
            counts["deadline_skipped"] += (outcome.get("message") or "").startswith(DEADLINE_SKIP)
        else:
            counts["failed" if outcome.tag == "failure" else "errors"] += 1
            message = (outcome.get("message") or outcome.text or "").strip().splitlines()
            counts["failures"].append((test_id, (message[0] if message else "")[:300], (outcome.text or "")[-3000:]))
    return counts


def _fmt(value, spec=""):
    return "-" if value is None else format(value, spec)


def summarize(out):
    """summary.json, summary.md (and failures.md when tests failed) from OUT/steps/*.json (one per
    finished step, in run order), the measuring steps' result files and OUT/junit.xml; written after
    every step, so a killed run still has one."""
    steps_dir = os.path.join(out, "steps")
    names = sorted(n for n in os.listdir(steps_dir) if n.endswith(".json")) if os.path.isdir(steps_dir) else []
    steps = [s for s in (_load(os.path.join(steps_dir, n)) for n in names) if s is not None]
    results = {k: _load(os.path.join(out, f"{k}.json")) for k in ("env", "build", "rerank", "cell", "models")}
    junit = junit_counts(os.path.join(out, "junit.xml"))
    failed = [s["name"] for s in steps if s.get("status") not in ("pass", "skipped")]  # skipped: not applicable
    summary = {
        "steps": steps,
        "results": {k: v for k, v in results.items() if v is not None},
        "tests": None if junit is None else {k: v for k, v in junit.items() if k != "failures"},
        "failed_tests": [] if junit is None else [f[0] for f in junit["failures"]],
        "ok": bool(steps) and not failed,
        "failed": failed,
    }
    _write_json(os.path.join(out, "summary.json"), summary)
    lines = ["# GPU check", ""]
    env = results["env"]
    if env:
        devices = ", ".join(
            f"{d['name']} (sm {d['capability']}, {d['memory_gib']} GiB, {d.get('multiprocessors', '?')} SMs)"
            for d in env["devices"]
        )
        smoke = " (CPU smoke: small sizes, host-clock timings)" if env.get("cpu_smoke") else ""
        lines += [
            f"torch {env['torch']}, CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}; {devices or 'no GPU'}; "
            f"{env.get('cpus', '?')} CPUs{smoke}",
            "",
        ]
    lines += ["| step | status | seconds | note |", "|---|---|---:|---|"]
    lines += [f"| {s['name']} | {s.get('status')} | {s.get('seconds', '')} | {s.get('note', '')} |" for s in steps]
    if junit:
        lines += [
            "",
            f"Tests: {junit['passed']} passed, {junit['failed']} failed, {junit['errors']} errors, "
            f"{junit['skipped']} skipped ({junit['deadline_skipped']} at the deadline) of {junit['tests']}",
        ]
        lines += [f"- FAILED {test_id}: {message}" for test_id, message, _ in junit["failures"][:20]]
    rerank = results["rerank"]
    if rerank and rerank.get("rows"):
        search = f"; default search on {rerank['device']}: {rerank['search']}" if rerank.get("search") else ""
        lines += ["", f"## Re-ranking (k1 20, k2 6, λ 0.3{search})", ""]
        lines += [
            "| data | scale | s | peak GiB above the features | CPU s | max abs diff vs CPU |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['name']} | {r['scale']} | {r['seconds']} | {_fmt(r.get('peak_gib_above_features'))} "
            f"| {_fmt(r.get('cpu_seconds'))} | {_fmt(r.get('max_abs_diff_vs_cpu'), '.2g')} |"
            for r in rerank["rows"]
        ]
    cell = results["cell"]
    if cell and cell.get("rows"):
        lines += [
            "",
            "## Fused cell update (device time per call; goals: forward >= 85 % of a same-bytes copy, "
            "fwd+bwd >= 1.5x torch.compile)",
            "",
            "| dtype | B, K, H, W | fused ms | GB/s | % of copy | x compiled | x eager | fwd+bwd ms "
            "| compiled fwd+bwd ms | fwd+bwd x compiled |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['dtype']} | {', '.join(map(str, r['size']))} | {r['fused_ms']:.4f} | {r['fused_gbps']} "
            f"| {r['pct_of_copy']} | {r['x_compiled']} | {r['x_eager']} | {r['fused_fwd_bwd_ms']:.4f} "
            f"| {r['compiled_fwd_bwd_ms']:.4f} | {r.get('fwd_bwd_x_compiled', '-')} |"
            for r in cell["rows"]
        ]
    models = results["models"]
    if models and models.get("nets"):
        lines += [
            "",
            f"## Train step, batch {models['batch']}, {models['amp']} autocast, SGD (each at its default input)",
            "",
            "Eager steps: the step time is host-bound for deep networks (Python and kernel launches); GPU busy",
            "is the kernels' own time in one step (profiler), what the device needs.",
            "",
            "| network | input | step ms | GPU busy ms | forward ms | peak GiB | parameters |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {n} | {r['input'][0]}x{r['input'][1]} | {r['step_ms']} | {r.get('busy_ms', '-')} "
            f"| {r.get('forward_ms', '-')} | {_fmt(r['peak_gib'])} | {r['params']:,} |"
            for n, r in models["nets"].items()
        ]
    lines += ["", "## Summary", ""] + _verdict_lines(summary, junit, rerank, cell, models, results["build"])
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    if junit and junit["failures"]:
        detail = ["# Failed tests", ""]
        for test_id, message, text in junit["failures"]:
            detail += [f"## {test_id}", "", message, "", "```", text, "```", ""]
        with open(os.path.join(out, "failures.md"), "w") as f:
            f.write("\n".join(detail))
    return summary


def _verdict_lines(summary, junit, rerank, cell, models, build=None):
    """The few closing lines of summary.md."""
    lines = [
        "- steps: " + ("all passed" if summary["ok"] else f"not passed: {', '.join(summary['failed']) or 'no steps'}")
    ]
    if build:
        lines.append(f"- build: C++ compiler {build['cxx']}" + ("" if build["ok"] else " (failed)"))
    if junit:
        reached = junit["tests"] - junit["deadline_skipped"]
        lines.append(f"- tests: {reached} of {junit['tests']} reached, {junit['failed'] + junit['errors']} failed")
    if rerank and rerank.get("rows"):
        lines.append("- re-ranking: " + "; ".join(f"{r['name']} {r['seconds']} s" for r in rerank["rows"]))
    if cell and cell.get("rows"):
        worst = min(cell["rows"], key=lambda r: r["pct_of_copy"])
        slow = min(cell["rows"], key=lambda r: r.get("fwd_bwd_x_compiled", math.inf))
        lines.append(
            f"- cell: lowest {worst['pct_of_copy']} % of copy ({worst['dtype']} {worst['size']}), "
            f"fwd+bwd at least {slow.get('fwd_bwd_x_compiled', '-')}x torch.compile"
        )
    if models and models.get("nets"):
        lines.append(f"- models: {len(models['nets'])} networks timed")
    return lines


def main(argv):
    smoke = argv[:1] == ["--cpu-smoke"]
    argv = argv[1:] if smoke else argv
    commands = {"env": env_step, "rerank": rerank_step, "cell": cell_step, "models": models_step}
    if argv == ["sanitize"]:
        sanitize_step(smoke)
    elif len(argv) == 2 and argv[0] in commands:
        os.makedirs(argv[1], exist_ok=True)
        commands[argv[0]](argv[1], smoke)
    elif len(argv) == 2 and argv[0] == "summary" and not smoke:
        summarize(argv[1])
    else:
        sys.exit(
            f"usage: gpu_validate.py [--cpu-smoke] {{{'|'.join(commands)}}} OUT_DIR | "
            "gpu_validate.py [--cpu-smoke] sanitize | gpu_validate.py summary OUT_DIR"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
