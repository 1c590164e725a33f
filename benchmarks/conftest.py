"""Shared benchmark plumbing: a summary of speed-up ratios measured in the same run.

Each benchmark sets ``benchmark.extra_info["impl"]`` (what ran) and, for the implementation the
others are compared with, ``benchmark.extra_info["candidate"] = True``; ``extra_info["calls"]`` (default
1) is how many calls one timed round makes, and the table shows the time per call. At the end of the session a
table prints, per group, every implementation's median and the candidate's speed-up over it.
"""


def _groups(benchmarks):
    groups = {}
    for bench in benchmarks:
        if not bench.stats or not bench.stats.rounds:
            continue
        groups.setdefault(bench.group or bench.name, []).append(bench)
    return groups


def _per_call_ms(bench):
    return bench.stats.median * 1e3 / bench.extra_info.get("calls", 1)


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    lines = []
    for group, benches in sorted(_groups(session.benchmarks).items()):
        candidate = next((b for b in benches if b.extra_info.get("candidate")), None)
        for bench in benches:
            median_ms = _per_call_ms(bench)
            ratio = ""
            if candidate is not None and bench is not candidate:
                cand_ms = _per_call_ms(candidate)
                ratio = f"{median_ms / cand_ms:6.2f}x"
            extra = bench.extra_info.get("note", "")
            lines.append(
                f"| {group} | {bench.extra_info.get('impl', bench.name)} | {median_ms:10.3f} | {ratio} | {extra} |"
            )
    if lines:
        terminalreporter.write_sep("-", "median times and candidate speed-up (same run)")
        terminalreporter.write_line("| group | impl | median ms per call | candidate speed-up | note |")
        terminalreporter.write_line("|---|---|---:|---:|---|")
        for line in lines:
            terminalreporter.write_line(line)
