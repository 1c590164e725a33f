"""The statistics of ``ptl study``: each row against the baseline, seed by seed (paired mean differences with
Bonferroni-corrected t-intervals, Holm-adjusted p-values; the t distribution from :mod:`.demo_stats`), and
their table."""

import math

from .study_config import BASELINE, PRIMARY, TITLES

__all__ = ["holm", "paired_comparisons", "format_comparisons"]


def holm(p_values):
    """Holm's step-down adjustment of ``p_values`` (a list), in their order: each adjusted value is
    ``max over the smaller ones of (m - rank) * p``, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def paired_comparisons(records, baseline=BASELINE, metric=PRIMARY, alpha=0.05):
    """Each row against ``baseline``, seed by seed, on ``metric``.

    Returns ``[{"row", "n", "mean", "sd", "diff", "low", "high", "p", "p_holm"}]`` (rows in first-seen
    order, the baseline without a difference): ``diff`` is the mean paired difference, ``low``/``high`` its
    two-sided t-interval at ``1 - alpha / m`` (Bonferroni over the ``m`` rows compared) and ``p`` / ``p_holm``
    the two-sided paired t-test's p-value, raw and Holm-adjusted. Intervals need two seeds (``nan`` below).
    """
    from .demo_stats import mean_sd, t_cdf, t_quantile

    names = list(dict.fromkeys(r["row"] for r in records))
    values = {
        name: {r["seed"]: r[metric] for r in records if r["row"] == name and r.get(metric) is not None}
        for name in names
    }  # a row without the metric (direct transfer's accuracy) is not compared
    compared = [name for name in names if name != baseline and baseline in values and values[name]]
    m = max(1, len(compared))
    out = []
    for name in names:
        present = [v for v in values[name].values() if not math.isnan(v)]
        mean, sd = mean_sd(present) if present else (float("nan"), float("nan"))
        entry = {"row": name, "n": len(present), "mean": mean, "sd": sd}
        entry.update(dict.fromkeys(("diff", "low", "high", "p", "p_holm"), float("nan")))
        if name in compared:
            seeds = sorted(s for s in values[name] if s in values[baseline])
            diffs = [values[name][s] - values[baseline][s] for s in seeds]
            diffs = [d for d in diffs if not math.isnan(d)]
            if diffs:
                entry["diff"], diff_sd = mean_sd(diffs)
                if len(diffs) > 1:
                    se = diff_sd / math.sqrt(len(diffs))
                    half = t_quantile(1.0 - alpha / (2 * m), len(diffs) - 1) * se
                    entry["low"], entry["high"] = entry["diff"] - half, entry["diff"] + half
                    t = abs(entry["diff"]) / se if se > 0 else math.inf
                    entry["p"] = 2.0 * (1.0 - t_cdf(t, len(diffs) - 1)) if se > 0 else 0.0
        out.append(entry)
    tested = [e for e in out if not math.isnan(e["p"])]
    for entry, adjusted in zip(tested, holm([e["p"] for e in tested])):
        entry["p_holm"] = adjusted
    return out


def format_comparisons(comparisons, config, metric=PRIMARY):
    """The study's table of ``metric``: each row's mean ± sd (%) and its corrected difference."""
    compared = sum(1 for c in comparisons if not math.isnan(c["diff"]))
    level = 100 * (1 - config.alpha)
    lines = [
        f"{config.protocol}-set Fashion-MNIST ({config.optimizer} lr {config.lr:g}, label smoothing "
        f"{config.label_smoothing:g}, head {config.head}), {metric} (%), {config.seeds} seed(s); differences to "
        f"{TITLES[BASELINE]} with {level:g} % intervals corrected for {compared} comparison(s) (Bonferroni), "
        "Holm-adjusted p",
        f"{'row':<30} {'n':>2} {'mean':>7} {'sd':>6} {'diff':>7} {'interval':>17} {'p_holm':>7}",
    ]
    for c in comparisons:
        interval = "" if math.isnan(c["low"]) else f"[{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"
        diff = "" if math.isnan(c["diff"]) else f"{100 * c['diff']:+.1f}"
        p = "" if math.isnan(c["p_holm"]) else f"{c['p_holm']:.3f}"
        lines.append(
            f"{TITLES[c['row']]:<30} {c['n']:>2} {100 * c['mean']:>7.1f} {100 * c['sd']:>6.1f} {diff:>7} "
            f"{interval:>17} {p:>7}"
        )
    return "\n".join(lines)
