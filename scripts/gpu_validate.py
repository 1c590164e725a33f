"""The measuring steps of scripts/gpu_check.sh, one subcommand each, and its summary writer.

    python scripts/gpu_validate.py env OUT_DIR        # versions, device, capability -> OUT_DIR/env.json
    python scripts/gpu_validate.py rerank OUT_DIR     # Market-scale re-ranking, CUDA vs CPU -> rerank.json
    python scripts/gpu_validate.py cell OUT_DIR       # fused-op rows vs copy and compiled reference -> cell.json
    python scripts/gpu_validate.py model OUT_DIR      # PTL-ResNet50 vs ResNet-50 AMP train step -> model.json
    python scripts/gpu_validate.py sanitize           # small cases for compute-sanitizer (no output files)
    python scripts/gpu_validate.py summary OUT_DIR    # summary.md and summary.json from OUT_DIR/steps/*.json

Every measuring step rewrites its JSON file after each row, so a step killed by the deadline still
leaves the rows it finished. torch is imported only by the measuring steps: the summary needs none.
"""

import json
import math
import os
import sys
import time


def _write_json(path, data):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


# ---------------------------------------------------------------- environment


def env_step(out):
    import torch

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
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
    if not info["cuda_available"]:
        sys.exit("torch sees no CUDA device (a CPU-only torch, or CUDA_VISIBLE_DEVICES hides the GPUs)")


# ---------------------------------------------------------------- timing helpers


def _device_ms(fn, calls, repeats=5):
    """Median over ``repeats`` of the CUDA-event time of ``calls`` back-to-back calls, per call (ms)."""
    import torch

    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return sorted(times)[len(times) // 2]


def _graph_ms(fn, calls, repeats=5):
    """Per-call device time of ``calls`` calls captured in one CUDA graph and replayed (no launch
    overhead at all); None when ``fn`` cannot be captured."""
    import torch

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
        return None
    return _device_ms(graph.replay, 1, repeats) / calls


# ---------------------------------------------------------------- re-ranking at Market scale


def rerank_step(out):
    import torch

    from ptl_ext.reid import re_ranking

    num_q, num_g, dim = 3368, 15913, 2048
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(751, dim, generator=gen)
    qf = centres[torch.randint(0, 751, (num_q,), generator=gen)].add_(torch.randn(num_q, dim, generator=gen), alpha=3.5)
    gf = centres[torch.randint(0, 751, (num_g,), generator=gen)].add_(torch.randn(num_g, dim, generator=gen), alpha=3.5)
    result = {"scale": f"{num_q} x {num_g}, d = {dim}", "rows": []}
    path = os.path.join(out, "rerank.json")
    qc, gc = qf.cuda(), gf.cuda()
    re_ranking(qc[:300], gc[:1200])  # warm-up: CUDA context, cuBLAS handles
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    gpu = re_ranking(qc, gc)
    torch.cuda.synchronize()
    gpu_s = time.perf_counter() - t0
    result["cuda_s"] = round(gpu_s, 3)
    result["cuda_peak_gib"] = round((torch.cuda.max_memory_allocated() - base) / 2**30, 3)
    result["cuda_bar_0_5_s"] = gpu_s < 0.5
    _write_json(path, result)
    t0 = time.perf_counter()
    cpu = re_ranking(qf, gf)
    result["cpu_s"] = round(time.perf_counter() - t0, 3)
    diff = (gpu.cpu() - cpu).abs()
    result["max_abs_diff"] = float(diff.max())
    result["match_1e-5"] = bool(result["max_abs_diff"] <= 1e-5)
    _write_json(path, result)
    print(json.dumps(result, indent=2))
    if not result["match_1e-5"]:
        sys.exit(f"CUDA re-ranking differs from the CPU by {result['max_abs_diff']:.3g} (> 1e-5)")


# ---------------------------------------------------------------- fused-op rows


CELL_SIZES = [(32, 64, 64, 32), (32, 128, 32, 16), (32, 256, 16, 8)]


def cell_step(out):
    import torch

    from ptl_ext import ops, reference

    compiled = torch.compile(reference.bconv_cell_update, fullgraph=True)
    rows = []
    path = os.path.join(out, "cell.json")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for size in CELL_SIZES:
            b, k, h, w = size
            gates = torch.randn(b, 4 * k, h, w, device="cuda").to(dtype)
            c_prev = torch.randn(b, k, h, w, device="cuda").to(dtype)
            elem = gates.element_size()
            nbytes = 7 * b * k * h * w * elem  # reads gates + c_prev, writes y + c
            src = torch.empty(nbytes // 2 // 4, device="cuda")
            dst = torch.empty_like(src)
            row = {"dtype": str(dtype).removeprefix("torch."), "size": list(size), "bytes": nbytes}
            row["fused_ms"] = _graph_ms(lambda: ops.bconv_cell_update(gates, c_prev), 100) or _device_ms(
                lambda: ops.bconv_cell_update(gates, c_prev), 100
            )
            row["copy_ms"] = _graph_ms(lambda: dst.copy_(src), 100) or _device_ms(lambda: dst.copy_(src), 100)
            row["eager_ms"] = _device_ms(lambda: reference.bconv_cell_update(gates, c_prev), 50)
            row["compiled_ms"] = _device_ms(lambda: compiled(gates, c_prev), 100)
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

            row["fused_fwd_bwd_ms"] = _device_ms(fused_fb, 50)
            row["compiled_fwd_bwd_ms"] = _device_ms(compiled_fb, 50)
            y, c = ops.bconv_cell_update(gates, c_prev)
            want = reference.bconv_cell_update(gates.float(), c_prev.float())
            errors = [float((got.float() - ref).abs().max()) for got, ref in zip((y, c), want)]
            row["max_abs_err_vs_fp32_reference"] = max(errors)
            rows.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
            _write_json(path, {"rows": rows})
            print(json.dumps(rows[-1]))


# ---------------------------------------------------------------- model train step


def model_step(out):
    import torch
    import torch.nn.functional as F

    from ptl_ext.models import PTLResNet50, resnet50

    amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    x = torch.randn(32, 3, 256, 128, device="cuda")
    target = torch.randint(0, 751, (32,), device="cuda")
    result = {"batch": 32, "input": "256 x 128", "amp": str(amp).removeprefix("torch."), "nets": {}}
    path = os.path.join(out, "model.json")
    nets = (("resnet50", lambda: resnet50(num_classes=751, last_stride=1)), ("ptl_resnet50", lambda: PTLResNet50(751)))
    for name, make in nets:
        torch.manual_seed(0)
        model = make().cuda().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

        def step():
            with torch.autocast("cuda", dtype=amp):
                loss = F.cross_entropy(model(x), target)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            return loss

        for _ in range(5):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        ms = _device_ms(step, 10, repeats=3)
        loss = float(step())
        peak = torch.cuda.max_memory_allocated() / 2**30
        result["nets"][name] = {"step_ms": round(ms, 2), "peak_gib": round(peak, 2), "loss_finite": math.isfinite(loss)}
        del step  # frees the network and its optimizer state before the next one is built
        torch.cuda.empty_cache()
        _write_json(path, result)
    nets = result["nets"]
    result["ptl_over_resnet50"] = round(nets["ptl_resnet50"]["step_ms"] / nets["resnet50"]["step_ms"], 2)
    _write_json(path, result)
    print(json.dumps(result, indent=2))


# ---------------------------------------------------------------- small cases for compute-sanitizer


def sanitize_step():
    """Small calls of every CUDA kernel (both cell paths, misaligned views, every dtype, the re-ranking
    ops) for ``compute-sanitizer --tool memcheck``; checks results against the CPU as it goes."""
    import torch

    from ptl_ext import ops
    from ptl_ext.reid.rerank import _gallery_index

    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        for shape in ((2, 8, 3, 5), (2, 7, 3, 5)):
            b, k, h, w = shape
            gates = torch.randn(b, 4 * k, h, w, device="cuda").to(dtype)
            c_prev = torch.randn(b, k, h, w, device="cuda").to(dtype)
            for g, cp in ((gates, c_prev), (_misaligned(gates), _misaligned(c_prev)), (gates, None)):
                y, c = ops.bconv_cell_update(g, cp)
                backward = torch.ops.ptl_ext.bconv_cell_update_backward
                dg, _ = backward(g, cp, c, torch.ones_like(y), None, cp is not None)
                torch.cuda.synchronize()
                assert torch.isfinite(y).all() and torch.isfinite(dg).all()
    x = torch.randn(300, 16)
    norms = x.pow(2).sum(1)
    _, idx, rowmax = ops.rerank_knn(x, norms, 9, 64)
    v = ops.rerank_sparse_v(x.cuda(), rowmax.cuda(), idx.cuda(), 8, 4)
    qe = ops.rerank_query_expansion(*v, idx.cuda(), 3)
    inv = _gallery_index(*qe, 50)
    dist = ops.squared_euclidean(x[:50].cuda(), x[50:].cuda(), norms[:50].cuda(), norms[50:].cuda())
    out = ops.rerank_jaccard(dist, rowmax[:50].cuda(), *qe, 0, *inv, 0.3)
    torch.cuda.synchronize()
    assert torch.isfinite(out).all()
    print("sanitize cases ran")


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


def summarize(out):
    """summary.json and summary.md from OUT/steps/*.json (one per finished step, in run order) and the
    measuring steps' result files; written after every step, so a killed run still has one."""
    steps_dir = os.path.join(out, "steps")
    names = sorted(n for n in os.listdir(steps_dir) if n.endswith(".json")) if os.path.isdir(steps_dir) else []
    steps = [s for s in (_load(os.path.join(steps_dir, n)) for n in names) if s is not None]
    results = {k: _load(os.path.join(out, f"{k}.json")) for k in ("env", "rerank", "cell", "model")}
    failed = [s["name"] for s in steps if s.get("status") not in ("pass", "skipped")]  # skipped: optional tool absent
    summary = {
        "steps": steps,
        "results": {k: v for k, v in results.items() if v is not None},
        "ok": bool(steps) and not failed,
        "failed": failed,
    }
    _write_json(os.path.join(out, "summary.json"), summary)
    lines = ["# GPU check", ""]
    env = results["env"]
    if env:
        devices = ", ".join(f"{d['name']} (sm {d['capability']}, {d['memory_gib']} GiB)" for d in env["devices"])
        lines += [f"torch {env['torch']}, CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}; {devices or 'no device'}", ""]
    lines += ["| step | status | seconds | note |", "|---|---|---:|---|"]
    lines += [f"| {s['name']} | {s.get('status')} | {s.get('seconds', '')} | {s.get('note', '')} |" for s in steps]
    rerank = results["rerank"]
    if rerank:
        lines += [
            "",
            f"## Re-ranking, {rerank['scale']}",
            "",
            f"CUDA {rerank.get('cuda_s')} s (peak {rerank.get('cuda_peak_gib')} GiB above the features), "
            f"CPU {rerank.get('cpu_s', '-')} s, max |CUDA - CPU| {rerank.get('max_abs_diff', '-')}",
        ]
    cell = results["cell"]
    if cell and cell.get("rows"):
        lines += [
            "",
            "## Fused cell update (forward; device time per call)",
            "",
            "| dtype | B, K, H, W | fused ms | GB/s | % of copy | × compiled | × eager | fwd+bwd ms "
            "| compiled fwd+bwd ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['dtype']} | {', '.join(map(str, r['size']))} | {r['fused_ms']:.4f} | {r['fused_gbps']} "
            f"| {r['pct_of_copy']} | {r['x_compiled']} | {r['x_eager']} | {r['fused_fwd_bwd_ms']:.4f} "
            f"| {r['compiled_fwd_bwd_ms']:.4f} |"
            for r in cell["rows"]
        ]
    model = results["model"]
    if model and model.get("nets"):
        lines += [
            "",
            f"## Train step, batch {model['batch']}, {model['input']}, {model['amp']} autocast",
            "",
            "| net | step ms | peak GiB |",
            "|---|---:|---:|",
        ]
        lines += [f"| {n} | {r['step_ms']} | {r['peak_gib']} |" for n, r in model["nets"].items()]
        if "ptl_over_resnet50" in model:
            lines += ["", f"PTL-ResNet50 / ResNet-50 step time: {model['ptl_over_resnet50']}"]
    verdict = "all steps passed" if summary["ok"] else f"not passed: {', '.join(failed) or 'no steps'}"
    lines += ["", "Overall: " + verdict]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return summary


def main(argv):
    commands = {"env": env_step, "rerank": rerank_step, "cell": cell_step, "model": model_step, "summary": summarize}
    if argv[:1] == ["sanitize"] and len(argv) == 1:
        sanitize_step()
    elif len(argv) == 2 and argv[0] in commands:
        os.makedirs(argv[1], exist_ok=True)
        commands[argv[0]](argv[1])
    else:
        sys.exit(f"usage: gpu_validate.py {{{'|'.join(commands)}}} OUT_DIR | gpu_validate.py sanitize")


if __name__ == "__main__":
    main(sys.argv[1:])
