"""Text tables of a run's (or several runs') metrics, as printed by ``ptl train``, ``eval`` and ``demo``;
the resolved settings of ``ptl train --dry-run``; a run's numbers beside a paper's (``paper.csv``)."""

from ..runs.report import format_table

PAPER_COLUMNS = ("mAP", "rank1", "rank5", "rank10", "mINP", "top1_error")
NOT_SETTINGS = ("command", "debug", "config", "dry_run", "paper", "spec")


def _toml_value(value):
    """``value`` (str, bool, int, float) written as a TOML value."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def format_settings(args):
    """The resolved settings of a ``ptl train`` namespace as TOML text (a valid config file).

    Every option after defaults are filled in, in the parser's order; an unset option, or a method's option
    without its method (``std_lambda`` without ``teacher``), is a comment.
    A config file's paper numbers (``args.paper``) follow as a ``[paper]`` table.
    """
    from ..runs.resolve import METHOD_OPTIONS

    lines = []
    for key, value in vars(args).items():
        if key in NOT_SETTINGS:
            continue
        if value is None:
            lines.append(f"# {key}: not set")
        elif key in METHOD_OPTIONS and not getattr(args, METHOD_OPTIONS[key]):
            lines.append(f"# {key} = {_toml_value(value)} applies only with {METHOD_OPTIONS[key]}")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    if args.rollback_periods and args.rollback_budget == "shared":
        lines.append(
            f"# rolling back shares epochs = {args.epochs} between {args.rollback_periods} periods of "
            f"{args.epochs // args.rollback_periods} epochs (period_epochs is not used)"
        )
    elif args.rollback_periods:
        lines.append(
            f"# rolling back trains {args.rollback_periods} x {args.period_epochs} = "
            f"{args.rollback_periods * args.period_epochs} epochs (epochs is not used)"
        )
    paper = getattr(args, "paper", None)
    if paper:
        lines += ["", "[paper]"] + [f"{key} = {_toml_value(value)}" for key, value in paper.items()]
    return "\n".join(lines)


def pretrained_note(args):
    """A warning line when the paper's row starts from pre-trained weights that this run does not load, or None."""
    paper = getattr(args, "paper", None) or {}
    if paper.get("pretrained") and not (args.pretrained or args.init_from or args.resume):
        return (
            f"note: the paper's row starts from pre-trained weights ({paper['pretrained']}); without "
            f"--pretrained FILE this run starts from random weights"
        )
    return None


def paper_comparison(name, parameters, metrics, paper):
    """Our final ``metrics`` (fractions) and ``parameters`` beside a paper's (percent and a count).

    Returns ``(table text, csv rows)``: the table has our row, the paper's and their difference; each
    csv row is ``{"metric", "ours", "paper", "difference"}`` in percent (parameters as counts).
    """
    reported = {key: paper[key] / 100 for key in PAPER_COLUMNS if key in paper}
    difference = {key: metrics[key] - reported[key] for key in reported if metrics.get(key) is not None}
    table = format_table(
        [
            (f"{name} (ours)", parameters, metrics),
            ("paper", paper.get("parameters"), reported),
            ("ours - paper", None, difference),
        ]
    )
    if paper.get("source"):
        table += f"\npaper: {paper['source']}"
    rows = []
    for key in PAPER_COLUMNS:
        ours = None if metrics.get(key) is None else round(100 * metrics[key], 4)
        if ours is None and key not in paper:
            continue
        theirs = paper.get(key)
        rows.append(
            {
                "metric": key,
                "ours": ours,
                "paper": theirs,
                "difference": None if None in (ours, theirs) else round(ours - theirs, 4),
            }
        )
    theirs = paper.get("parameters")
    rows.append(
        {
            "metric": "parameters",
            "ours": parameters,
            "paper": theirs,
            "difference": None if None in (parameters, theirs) else parameters - theirs,
        }
    )
    if paper.get("source"):
        rows.append({"metric": "source", "ours": None, "paper": paper["source"], "difference": None})
    return table, rows


def write_paper_csv(path, rows):
    """Write :func:`paper_comparison`'s csv rows to ``path`` (atomically; empty cells for missing numbers)."""
    import csv

    from .._io import atomic_write

    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=("metric", "ours", "paper", "difference"))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)

    atomic_write(path, write, binary=False)
