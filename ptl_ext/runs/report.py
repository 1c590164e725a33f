"""Text tables of a run's (or several runs') metrics, as printed by ``ptl train``, ``eval``, ``pretrain``."""

TITLES = {
    "mAP": "mAP",
    "rank1": "CMC-1",
    "rank5": "CMC-5",
    "rank10": "CMC-10",
    "mINP": "mINP",
    "top1_error": "top-1 error",
}


def format_table(rows):
    """A text table of ``(name, parameters or None, metrics dict)`` rows (fractions printed in %)."""
    reid = any("mAP" in metrics for _, _, metrics in rows)
    columns = ("mAP", "rank1", "rank5", "rank10", "mINP") if reid else ("top1_error",)
    width = max(12, *(len(name) for name, _, _ in rows))
    lines = [f"{'network':<{width}} {'params':>8} " + " ".join(f"{TITLES[c]:>11}" for c in columns)]
    for name, params, metrics in rows:
        cells = [f"{100 * metrics[c]:10.2f}%" if metrics.get(c) is not None else f"{'-':>11}" for c in columns]
        count = f"{params / 1e6:7.2f}M" if params else f"{'-':>8}"
        lines.append(f"{name:<{width}} {count} " + " ".join(cells))
    return "\n".join(lines)
