"""Per-run metrics files: a CSV with one row per epoch and a PNG of the loss and evaluation curves."""

import csv

from .._io import atomic_write

PREFERRED_COLUMNS = (
    "epoch",
    "lr",
    "loss",
    "ce",
    "triplet",
    "train_acc",
    "states_reset",
    "time_s",
    "mAP",
    "rank1",
    "rank5",
    "rank10",
    "mINP",
    "top1_error",
)


def _columns(history):
    seen = []
    for row in history:
        seen += [k for k in row if k not in seen]
    return [c for c in PREFERRED_COLUMNS if c in seen] + [c for c in seen if c not in PREFERRED_COLUMNS]


def write_csv(path, history):
    """Write ``history`` (a list of dicts, one per epoch) to ``path`` atomically; missing values stay empty."""
    columns = _columns(history)

    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(history)

    atomic_write(path, write, binary=False)


def read_csv(path):
    """Rows of a metrics CSV as dicts of floats (``None`` for empty cells)."""
    with open(path, newline="") as fh:
        return [{k: float(v) if v != "" else None for k, v in row.items()} for row in csv.DictReader(fh)]


def plot_curves(path, history, metric="mAP", title=""):
    """PNG with the training loss per epoch (left) and ``metric`` (a fraction, drawn in %) at the
    evaluated epochs (right), with rank-1 beside mAP; rows with a ``rollback`` value get a vertical line.

    Uses matplotlib's Agg canvas directly (no pyplot state, no display needed); written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    loss_ax, metric_ax = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    loss_ax.plot(epochs, [row["loss"] for row in history], marker="o", label="total")
    for part in ("ce", "triplet"):
        if any(part in row for row in history):
            loss_ax.plot(epochs, [row.get(part) for row in history], marker=".", linestyle="--", label=part)
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    loss_ax.legend()
    evaluated = [row for row in history if row.get(metric) is not None]
    eval_epochs = [row["epoch"] for row in evaluated]
    metric_ax.plot(eval_epochs, [100.0 * row[metric] for row in evaluated], marker="o", label=metric)
    if metric == "mAP" and all(row.get("rank1") is not None for row in evaluated):
        metric_ax.plot(eval_epochs, [100.0 * row["rank1"] for row in evaluated], marker="s", label="rank-1")
    metric_ax.set(xlabel="epoch", ylabel="%", title="evaluation")
    for row in history:  # rolling back: a dashed line before the first epoch of each new period
        if row.get("rollback") is not None:
            for ax in (loss_ax, metric_ax):
                ax.axvline(row["epoch"] - 0.5, color="gray", linestyle=":", label=f"roll back B{row['rollback']}..")
    metric_ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    atomic_write(path, lambda fh: figure.savefig(fh, format="png"))
