"""Statistics and outputs of ``ptl demo --seeds N``: mean ± sd, paired t-intervals, CSVs, table and plot.

The Student-t quantile is computed here (regularised incomplete beta by continued fraction, then
bisection), so the project needs no SciPy.
"""

import csv
import math

from .. import _io

METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP")
TITLES = {"mAP": "mAP", "rank1": "CMC-1", "rank5": "CMC-5", "rank10": "CMC-10", "mINP": "mINP"}
SEED_COLUMNS = ("seed", "row", *METRICS, "parameters", "epochs", "time_s", "start_mAP")


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for numerator in (even, odd):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a, b, x):
    """Regularised incomplete beta ``I_x(a, b)`` for ``a, b > 0``, ``0 <= x <= 1``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """Student-t cumulative distribution function with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p, df):
    """The ``p`` quantile (``0 < p < 1``) of Student's t with ``df > 0`` degrees of freedom."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile: need 0 < p < 1 and df > 0, got p={p}, df={df}")
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)


def mean_sd(values):
    """``(mean, sample standard deviation)`` of a list of numbers (sd ``nan`` for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_sd: no values")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return mean, sd


def paired_interval(values, baseline, level=0.95):
    """Mean difference ``values − baseline`` (paired by position) and its two-sided ``level`` t-interval.

    Returns ``(mean, sd, low, high)``; the interval is ``nan`` with fewer than two pairs.
    """
    if len(values) != len(baseline):
        raise ValueError(f"paired_interval: {len(values)} values but {len(baseline)} baseline values")
    diffs = [a - b for a, b in zip(values, baseline)]
    mean, sd = mean_sd(diffs)
    if len(diffs) < 2:
        return mean, sd, float("nan"), float("nan")
    half = t_quantile(0.5 + level / 2.0, len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return mean, sd, mean - half, mean + half


def write_seed_csv(path, records):
    """One line per (seed, row): ``records`` are dicts with :data:`SEED_COLUMNS` keys (``start_mAP``, the mAP
    before fine-tuning, only where measured)."""

    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=SEED_COLUMNS, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(records)

    _io.atomic_write(path, write, binary=False)


def read_seed_csv(path):
    """The records of :func:`write_seed_csv` (numbers as float, ``seed``/``epochs`` as int, empty cells ``None``)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in SEED_COLUMNS[2:]:
            row[key] = float(row[key]) if row[key] != "" else None
        row["seed"], row["epochs"] = int(row["seed"]), int(row["epochs"])
    return rows


def summarize(records, baseline_row, level=0.95):
    """Per row (in first-seen order): n, mean and sd of every metric, parameters, mean time, and the paired
    difference to ``baseline_row`` (same seeds) with its ``level`` t-interval for mAP and CMC-1.

    Returns a list of dicts (``row``, ``n``, ``<metric>_mean``, ``<metric>_sd``, ``parameters``, ``time_s``,
    ``d_<metric>_mean``, ``d_<metric>_low``, ``d_<metric>_high`` for ``mAP`` and ``rank1``).
    """
    names = list(dict.fromkeys(r["row"] for r in records))
    by_row = {name: {r["seed"]: r for r in records if r["row"] == name} for name in names}
    base = by_row.get(baseline_row, {})
    summary = []
    for name in names:
        runs = by_row[name]
        seeds = sorted(runs)
        out = {
            "row": name,
            "n": len(seeds),
            "parameters": runs[seeds[0]]["parameters"],
            "time_s": mean_sd([runs[s]["time_s"] for s in seeds])[0],
        }
        for metric in METRICS:
            out[f"{metric}_mean"], out[f"{metric}_sd"] = mean_sd([runs[s][metric] for s in seeds])
        paired = [s for s in seeds if s in base]
        if name != baseline_row and paired:
            for metric in ("mAP", "rank1"):
                mean, _, low, high = paired_interval(
                    [runs[s][metric] for s in paired], [base[s][metric] for s in paired], level
                )
                out[f"d_{metric}_mean"], out[f"d_{metric}_low"], out[f"d_{metric}_high"] = mean, low, high
        summary.append(out)
    return summary


def write_summary_csv(path, summary):
    """The :func:`summarize` rows as a CSV (empty cells where a value does not apply)."""
    columns = list(dict.fromkeys(key for row in summary for key in row))

    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(summary)

    _io.atomic_write(path, write, binary=False)


def _pct(value):
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def format_summary(summary, baseline_row, level=0.95):
    """The demo's table: per row mean ± sd (%) of every metric, parameters, time, and the paired difference
    in mAP to ``baseline_row`` with its interval."""
    width = max(12, *(len(row["row"]) for row in summary))
    several = any(row["n"] > 1 for row in summary)
    cell = 13 if several else 7
    head = f"{'row':<{width}} " + " ".join(f"{TITLES[m]:>{cell}}" for m in METRICS)
    head += f" {'params':>8} {'time':>7}"
    if several:
        head += f"  {'ΔmAP vs ' + baseline_row + f' ({100 * level:.0f} % CI)'}"
    lines = [head]
    for row in summary:
        cells = []
        for metric in METRICS:
            mean, sd = row[f"{metric}_mean"], row[f"{metric}_sd"]
            text = _pct(mean) + (f" ± {_pct(sd)}" if several and not math.isnan(sd) else "")
            cells.append(f"{text:>{cell}}")
        params = f"{row['parameters'] / 1e6:7.2f}M"
        line = f"{row['row']:<{width}} " + " ".join(cells) + f" {params} {row['time_s']:6.0f}s"
        if several and "d_mAP_mean" in row:
            line += f"  {100 * row['d_mAP_mean']:+.1f} [{_pct(row['d_mAP_low'])}, {_pct(row['d_mAP_high'])}]"
        lines.append(line)
    return "\n".join(lines)


def plot_map_curves(path, curves, title=""):
    """One PNG overlaying mAP (%) against the epoch for every row.

    ``curves``: ``{row: [(epoch, [mAP per seed]), ...]}``; a row with a single point at epoch 0 (direct
    transfer) is drawn as a horizontal line; with several seeds the mean is drawn with a ±sd band.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.5), dpi=90)
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    last_epoch = max((epoch for points in curves.values() for epoch, _ in points), default=1)
    for name, points in curves.items():
        stats = [(epoch, *mean_sd(values)) for epoch, values in points]
        if len(stats) == 1 and stats[0][0] == 0:
            ax.axhline(100 * stats[0][1], linestyle="--", color="gray", label=name)
            continue
        epochs = [e for e, _, _ in stats]
        means = [100 * m for _, m, _ in stats]
        (line,) = ax.plot(epochs, means, marker="o", label=name)
        if all(not math.isnan(sd) for _, _, sd in stats):
            ax.fill_between(
                epochs,
                [m - 100 * sd for m, (_, _, sd) in zip(means, stats)],
                [m + 100 * sd for m, (_, _, sd) in zip(means, stats)],
                color=line.get_color(),
                alpha=0.15,
            )
    ax.set(xlabel="epoch", ylabel="mAP (%)", xlim=(0, last_epoch + 0.5), title=title)
    ax.legend(fontsize=8)
    figure.tight_layout()
    _io.atomic_write(path, lambda fh: figure.savefig(fh, format="png"))
