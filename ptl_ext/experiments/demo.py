"""``ptl demo``: a transfer-learning experiment on synthetic data, in the papers' own setting.

A backbone is pre-trained on a synthetic *source* domain (more identities, other people, other
cameras: ImageNet's part) and cached; every row then starts from that one pre-trained backbone on the
synthetic *target* set: direct transfer (evaluated as is), the fine-tuned backbone, its PTL network,
the backbone taught by that PTL run (STD, λ 0.8) and rolling back to the pre-trained weights. Every
fine-tuning row trains the same number of epochs (rolling back: periods × period epochs). ``--seeds N``
repeats the rows over N training seeds (same data, same pre-trained backbone) and reports mean ± sd and
paired 95 % t-intervals against the fine-tuned backbone; ``--ablations`` adds PTL variants (state reset
per batch, ``c_prev`` always zero, half-width side stream, and evaluation from a state accumulated over
the training set, which is not in the papers) and a BatchNorm probe of the PTL runs.

Every run is a :class:`~ptl_ext.runs.RunSpec` built by :func:`ptl_ext.runs.build_spec` (never through the
command line's parser); the settings are a :class:`DemoConfig`.
Outputs in the demo folder: ``seeds.csv`` (one line per seed and row), ``summary.csv``, ``map_curves.png``,
``ptl_probe.csv`` (with ``--ablations``) and one run folder per seed and row.
"""

import os
import tempfile
import time
from dataclasses import dataclass, field

from .. import _checks, _io
from . import demo_stats
from .cache import default_cache_root
from .demo_data import pretrained_backbone, pretrained_digest, target_dataset
from .demo_rows import RECIPE_TEXT, TRAIN_STATE_ROW, _direct_transfer, train_row, train_state_row

DEMO_ARCH = "resnet34"
BASELINE = "fine-tuned"


@dataclass(frozen=True)
class DemoConfig:
    """The demo's settings (``ptl demo``'s options, with their defaults): the backbone ``arch`` (its PTL row is
    ``ptl_ARCH``); ``epochs`` of every fine-tuning row, ``rollback_periods`` (dividing ``epochs``) and ``lr``
    (Adam's rate for every layer: the recipe is :data:`~ptl_ext.experiments.demo_rows.RECIPE`); the synthetic
    target (``train_ids``, ``test_ids``, ``images_per_cam``) and source (``source_ids`` > ``train_ids``,
    ``source_images_per_cam``) sets at ``height`` x ``width``; pre-training (``pretrain_epochs``,
    ``pretrain_lr``); ``seed`` (data, pre-training) and ``seeds`` training seeds per row; ``ablations``; ``out``
    and ``cache`` folders (``None``: a temp folder, the default cache); ``keep_checkpoints``, ``workers``,
    ``progress``."""

    arch: str = DEMO_ARCH
    epochs: int = 6
    rollback_periods: int = 3
    lr: float = 3e-4
    train_ids: int = 32
    test_ids: int = 32
    images_per_cam: int = 3
    source_ids: int = 64
    source_images_per_cam: int = 3
    pretrain_epochs: int = 8
    pretrain_lr: float = 0.01
    height: int = 64
    width: int = 32
    seed: int = 0
    seeds: int = 1
    ablations: bool = False
    out: str = None
    cache: str = None
    keep_checkpoints: bool = False
    workers: int = 0
    progress: bool = True

    def __post_init__(self):
        minimum = {"train_ids": 2, "images_per_cam": 2, "source_ids": 2, "source_images_per_cam": 2, "height": 16}
        minimum.update(width=8, seed=0, workers=0)
        for name in ("epochs", "rollback_periods", "test_ids", "pretrain_epochs", "seeds", *minimum):
            _checks.positive_int(getattr(self, name), name, minimum.get(name, 1))
        for name in ("lr", "pretrain_lr"):
            _checks.real(getattr(self, name), name, 0.0, exclusive_minimum=True)
        for name in ("ablations", "keep_checkpoints", "progress"):
            _checks.boolean(getattr(self, name), name)
        check_args(self)


@dataclass
class Row:
    """One row of the demo: its name, run folder and ``ptl train`` option overrides."""

    name: str
    folder: str
    options: dict = field(default_factory=dict)
    teacher: str = None  # folder of the row whose last.pt teaches (STD)
    extra: str = None  # "train_state": also evaluate with an eval state accumulated over the training set


def check_args(args):
    """Refuse option combinations the experiment cannot honour (``ValueError`` naming them)."""
    if args.epochs % args.rollback_periods:
        raise ValueError(
            f"--epochs {args.epochs} must be a multiple of --rollback-periods {args.rollback_periods}: "
            "every fine-tuning row gets the same epoch budget"
        )
    if args.source_ids <= args.train_ids:
        raise ValueError(
            f"--source-ids {args.source_ids} must exceed --train-ids {args.train_ids}: the source "
            "domain plays ImageNet's part"
        )


def demo_rows(args):
    """The rows in training order (STD needs the PTL run's checkpoint)."""
    arch, ptl = args.arch, f"ptl_{args.arch}"
    period = args.epochs // args.rollback_periods
    rows = [
        Row(BASELINE, f"finetuned_{arch}", {"arch": arch}),
        Row("PTL", ptl, {"arch": ptl}, extra="train_state" if args.ablations else None),
        Row("STD", f"std_{arch}", {"arch": arch}, teacher=ptl),
        Row(
            "rolling back",
            f"rollback_{arch}",
            {"arch": arch, "rollback_periods": args.rollback_periods, "period_epochs": period},
        ),
    ]
    if args.ablations:
        rows += [
            Row("PTL, state reset per batch", f"{ptl}_reset", {"arch": ptl, "cell_state": "reset"}),
            Row("PTL, c_prev always 0", f"{ptl}_zero", {"arch": ptl, "cell_state": "zero"}),
            Row("PTL, half-width side", f"{ptl}_narrow", {"arch": ptl, "side_width": 0.5}),
        ]
    return rows


def _remove_checkpoints(seed_dir):
    for folder, _, files in os.walk(seed_dir):
        for name in files:
            if name.endswith(".pt"):
                os.remove(os.path.join(folder, name))


def _write_probe(path, probes):
    lines = ["seed,layer,mean_shift_zero_state,var_ratio_zero_state,mean_shift_train_state,var_ratio_train_state"]
    lines += [
        f"{seed},{layer},{zero[0]:.6f},{zero[1]:.6f},{state[0]:.6f},{state[1]:.6f}"
        for seed, probe in probes
        for layer, (zero, state) in probe.items()
    ]
    text = "\n".join(lines) + "\n"
    _io.atomic_write(path, lambda fh: fh.write(text), binary=False)


def describe(args, training_seeds):
    """The one line saying how the data and the budget were set."""
    period = args.epochs // args.rollback_periods
    seeds = (
        f"seed {training_seeds[0]}" if len(training_seeds) == 1 else f"seeds {training_seeds[0]}..{training_seeds[-1]}"
    )
    return (
        f"data: synthetic {args.height}x{args.width}, data/pre-training seed {args.seed}; {args.arch} pre-trained "
        f"{args.pretrain_epochs} epochs (cross-entropy) on a source domain of {args.source_ids} identities "
        f"(other people, other cameras), fine-tuned on a target of {args.train_ids} training / {args.test_ids} "
        f"test identities; budget: {args.epochs} epochs per fine-tuning row (rolling back "
        f"{args.rollback_periods} periods x {period}), {RECIPE_TEXT} at lr {args.lr:g}, training {seeds}"
    )


def run_demo(args):
    """Run the experiment of a :class:`DemoConfig` (see the module docstring); returns
    ``{"records", "summary", "out", ...}``."""
    out = args.out or tempfile.mkdtemp(prefix="ptl-demo-")
    os.makedirs(out, exist_ok=True)
    cache_root = args.cache or default_cache_root()
    started = time.perf_counter()
    data_dir, data_reused = target_dataset(args, cache_root)
    print(f"target set: {data_dir} ({'reused' if data_reused else 'generated'})", flush=True)
    backbone, backbone_reused = pretrained_backbone(args, cache_root)
    print(
        f"pre-trained {args.arch}: {backbone} ({'reused from the cache' if backbone_reused else 'trained'}, "
        f"{time.perf_counter() - started:.0f} s so far)",
        flush=True,
    )
    expected = pretrained_digest(args.arch, backbone)
    training_seeds = list(range(args.seed, args.seed + args.seeds))
    direct = _direct_transfer(args, data_dir, backbone, out)
    records, probes, curves = [], [], {"direct transfer": [(0, [direct["mAP"]])]}
    for seed in training_seeds:
        seed_dir = os.path.join(out, f"seed{seed}")
        records.append({**direct, "seed": seed})
        for row in demo_rows(args):
            print(f"\n== {row.name}, seed {seed}", flush=True)
            record, trainer = train_row(row, seed, args, data_dir, backbone, seed_dir)
            records.append(record)
            print(f"   {row.name}: mAP {100 * record['mAP']:.1f} %, {record['time_s']:.0f} s", flush=True)
            if row.extra == "train_state":
                extra, probe = train_state_row(record, trainer)
                records.append(extra)
                probes.append((seed, probe))
            del trainer
        if not args.keep_checkpoints:
            _remove_checkpoints(seed_dir)
        demo_stats.write_seed_csv(os.path.join(out, "seeds.csv"), records)
    for record in records:
        if record["start_digest"] != expected:
            raise RuntimeError(
                f"demo: row {record['row']} (seed {record.get('seed')}) did not start from the "
                f"pre-trained backbone {backbone}"
            )
        if record.get("rollback_digest", expected) != expected:
            raise RuntimeError("demo: rolling back's snapshot is not the pre-trained backbone")
    for record in records[1:]:
        if record["row"] != "direct transfer":
            points = curves.setdefault(record["row"], {})
            for epoch, value in record["curve"]:
                points.setdefault(epoch, []).append(value)
    curves = {name: sorted(points.items()) if isinstance(points, dict) else points for name, points in curves.items()}
    summary = demo_stats.summarize(records, BASELINE)
    demo_stats.write_summary_csv(os.path.join(out, "summary.csv"), summary)
    plot = os.path.join(out, "map_curves.png")
    demo_stats.plot_map_curves(plot, curves, f"{args.arch}: transfer from the synthetic source domain")
    if probes:
        _write_probe(os.path.join(out, "ptl_probe.csv"), probes)
    print("\n" + describe(args, training_seeds))
    print(demo_stats.format_summary(summary, BASELINE))
    if args.ablations:
        print(
            f"* {TRAIN_STATE_ROW[:-1]}: evaluated from the mean state the cells carried over the training set "
            "(not in the papers, which evaluate from zeros)"
        )
        for seed, probe in probes:
            print(
                f"PTL fuse BatchNorm inputs at test vs running statistics, seed {seed}, mean shift / variance "
                "ratio, zero state -> train state: "
                + ", ".join(f"{name} {z[0]:.2f}/{z[1]:.2f} -> {t[0]:.2f}/{t[1]:.2f}" for name, (z, t) in probe.items())
            )
    print(
        f"per-seed results: {os.path.join(out, 'seeds.csv')}; summary: {os.path.join(out, 'summary.csv')}; "
        f"mAP curves: {plot}; total {time.perf_counter() - started:.0f} s"
    )
    return {
        "records": records,
        "summary": summary,
        "out": out,
        "backbone": backbone,
        "expected_digest": expected,
        "backbone_reused": backbone_reused,
        "plot": plot,
    }
