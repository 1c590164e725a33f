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

Runs are built from option dicts checked like a config file (:func:`ptl_ext.cli.options.train_options`).
Outputs in the demo folder: ``seeds.csv`` (one line per seed and row), ``summary.csv``, ``map_curves.png``,
``ptl_probe.csv`` (with ``--ablations``) and one run folder per seed and row.
"""

import os
import tempfile
import time
from dataclasses import dataclass, field

from . import demo_stats
from .cache import cached, default_cache_root

DEMO_ARCH = "resnet34"
DATA_VERSION = 1  # bump when the synthetic generator's output changes: cache entries are keyed by it
PRETRAIN_VERSION = 1  # likewise for the pre-training recipe
DESCRIPTION = (
    "A transfer experiment on synthetic data: pre-train a backbone on a synthetic source domain (cached), "
    "then compare, all from that backbone on the synthetic target set: direct transfer, the fine-tuned "
    "backbone, its PTL network, STD taught by the PTL run and rolling back to the pre-trained weights, "
    "with equal epoch budgets. --seeds N gives mean ± sd and paired 95 % intervals."
)
BASELINE = "fine-tuned"


def add_options(parser):
    """The options of ``ptl demo``."""
    import argparse

    from ..models import list_models
    from .option_types import count, rate

    def opt(name, default, help_text, kind=None):
        parser.add_argument(name, type=kind or count(), default=default, help=f"{help_text} (default: %(default)s)")

    parser.add_argument("--out", default=None, help="demo folder (default: a new folder in the temp directory)")
    parser.add_argument(
        "--cache",
        default=None,
        help="cache of the synthetic sets and pre-trained backbones (default: $PTL_CACHE, else "
        "$XDG_CACHE_HOME/ptl_ext, else ~/.cache/ptl_ext)",
    )
    parser.add_argument(
        "--arch",
        default=DEMO_ARCH,
        choices=list_models(exclude=("ptl_*", "*mgn*")),
        help="plain backbone; the PTL row is ptl_ARCH (default: %(default)s)",
    )
    opt("--epochs", 6, "epochs of every fine-tuning row")
    opt("--rollback-periods", 3, "rolling-back periods, each --epochs/periods epochs (must divide --epochs)")
    opt(
        "--lr",
        0.01,
        "fine-tuning learning rate of the backbone and new layers; the heads learn at 10x",
        rate(exclusive_minimum=True),
    )
    opt("--train-ids", 32, "target training identities", count(2))
    opt("--test-ids", 32, "target test identities")
    opt("--images-per-cam", 4, "target images per identity and camera", count(2))
    opt("--source-ids", 64, "source (pre-training) identities, more than --train-ids", count(2))
    opt("--source-images-per-cam", 3, "source images per identity and camera", count(2))
    opt("--pretrain-epochs", 16, "pre-training epochs")
    opt("--pretrain-lr", 0.01, "pre-training learning rate (from scratch)", rate(exclusive_minimum=True))
    opt("--height", 64, "image height", count(16))
    opt("--width", 32, "image width", count(8))
    opt("--seed", 0, "seed of the data and of the pre-training; training seeds are SEED..SEED+N-1", count(0))
    opt("--seeds", 1, "training seeds per row (N)")
    parser.add_argument(
        "--ablations",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="add the PTL ablation rows and the BatchNorm probe",
    )
    parser.add_argument(
        "--keep-checkpoints",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep each run's last.pt/best.pt (default: removed once the seed is done)",
    )
    opt("--workers", 0, "DataLoader worker processes", count(0))
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")


@dataclass
class Row:
    """One row of the demo: its name, run folder, option overrides and model tweaks."""

    name: str
    folder: str
    options: dict = field(default_factory=dict)
    teacher: str = None  # folder of the row whose last.pt teaches (STD)
    state_mode: str = None  # cell state mode (ablation)
    narrow: bool = False  # half-width side stream (ablation)
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
            Row("PTL, state reset per batch", f"{ptl}_reset", {"arch": ptl}, state_mode="reset"),
            Row("PTL, c_prev always 0", f"{ptl}_zero", {"arch": ptl}, state_mode="zero"),
            Row("PTL, half-width side", f"{ptl}_narrow", {"arch": ptl}, narrow=True),
        ]
    return rows


TRAIN_STATE_ROW = "PTL, eval w/ train state*"


def common_options(args, data_dir, backbone):
    """The ``ptl train`` options every fine-tuning row shares."""
    period = args.epochs // args.rollback_periods
    return {
        "dataset": "market1501",
        "root": data_dir,
        "pretrained": backbone,
        "height": args.height,
        "width": args.width,
        "dropout": 0.0,
        "p": min(8, args.train_ids),
        "k": 4,
        "triplet_weight": 1.0,
        "pad": 4,
        "erasing": 0.3,
        "epochs": args.epochs,
        "lr": args.lr,
        "head_lr": 10 * args.lr,
        "step_size": max(1, 2 * args.epochs // 3),
        "eval_every": period,
        "save_every": 0,
        "workers": args.workers,
        "device": "cpu",
        "progress": args.progress,
    }


def target_dataset(args, cache_root):
    """The cached synthetic target set: ``(folder, reused)``."""
    from ..data import make_synthetic_market

    settings = {
        "version": DATA_VERSION,
        "domain": "target",
        "train_ids": args.train_ids,
        "test_ids": args.test_ids,
        "cams": 4,
        "images_per_cam": args.images_per_cam,
        "height": args.height,
        "width": args.width,
        "seed": args.seed,
    }

    def build(folder):
        make_synthetic_market(
            folder,
            num_train_ids=args.train_ids,
            num_test_ids=args.test_ids,
            num_cams=4,
            images_per_cam=args.images_per_cam,
            height=args.height,
            width=args.width,
            seed=args.seed,
        )

    return cached(cache_root, "target", settings, build)


def pretraining_settings(args):
    """Everything the cached pre-trained backbone depends on (its cache key)."""
    return {
        "version": PRETRAIN_VERSION,
        "data_version": DATA_VERSION,
        "arch": args.arch,
        "source_ids": args.source_ids,
        "source_test_ids": 8,
        "cams": 4,
        "images_per_cam": args.source_images_per_cam,
        "height": args.height,
        "width": args.width,
        "epochs": args.pretrain_epochs,
        "lr": args.pretrain_lr,
        "p": min(8, args.source_ids),
        "k": 4,
        "pad": 4,
        "erasing": 0.0,
        "last_stride": 2,
        "seed": args.seed,
    }


def pretrained_backbone(args, cache_root):
    """The cached pre-trained backbone (torchvision keys): ``(path, reused)``; trains it when absent."""
    from ..data import make_synthetic_market
    from .pretrain import pretrain_options, run_pretrain

    settings = pretraining_settings(args)

    def build(folder):
        source = os.path.join(folder, "source")
        make_synthetic_market(
            source,
            num_train_ids=settings["source_ids"],
            num_test_ids=settings["source_test_ids"],
            num_cams=settings["cams"],
            images_per_cam=settings["images_per_cam"],
            height=settings["height"],
            width=settings["width"],
            seed=settings["seed"],
            domain="source",
        )
        run = os.path.join(folder, "run")
        path, _ = run_pretrain(
            pretrain_options(
                root=source,
                arch=settings["arch"],
                out=run,
                epochs=settings["epochs"],
                lr=settings["lr"],
                height=settings["height"],
                width=settings["width"],
                p=settings["p"],
                k=settings["k"],
                pad=settings["pad"],
                erasing=settings["erasing"],
                last_stride=settings["last_stride"],
                seed=settings["seed"],
                workers=args.workers,
                device="cpu",
                progress=args.progress,
            )
        )
        os.replace(path, os.path.join(folder, "backbone.pth"))
        for name in ("last.pt", "best.pt"):
            if os.path.exists(os.path.join(run, name)):
                os.remove(os.path.join(run, name))

    folder, reused = cached(cache_root, "pretrained", settings, build)
    return os.path.join(folder, "backbone.pth"), reused


def stage_digest(stages):
    """SHA-256 of a backbone's stage weights (``nn.ModuleList`` state, BN statistics included)."""
    from ..train.checkpoint import content_digest

    return content_digest(stages.state_dict())


def pretrained_digest(arch, path):
    """:func:`stage_digest` of the backbone ``arch`` loaded from the torchvision-format ``path``."""
    from torch import nn

    from ..models import build_backbone

    return stage_digest(nn.ModuleList(build_backbone(arch, pretrained=path).stages()))


def _narrow_ptl(run, num_classes, size):
    """ptl_ARCH with every side-stream width halved (the ablation)."""
    import torch

    from ..models import PTLNet, build_backbone, probe_stages
    from ..models.ptl import default_widths

    torch.manual_seed(run.seed)
    options = {"last_stride": run.last_stride} if run.arch.startswith("ptl_resnet") else {}
    stages = build_backbone(run.arch[len("ptl_") :], pretrained=run.pretrained, **options).stages()
    cells, fuses = default_widths([shape[0] for shape in probe_stages(stages, size)])
    return PTLNet(
        stages,
        num_classes,
        cell_channels=[max(4, c // 2) for c in cells],
        fuse_channels=[max(4, c // 2) for c in fuses],
        dropout=run.dropout,
        input_size=size,
    )


def _direct_transfer(args, data_dir, backbone, out):
    """Evaluate the pre-trained backbone as is (no fine-tuning): a record without seed."""
    from ..models import count_parameters
    from ..train import DistInfo
    from .dataset import build_data
    from .options import train_options
    from .run import build_model, select_device

    run = train_options(
        **common_options(args, data_dir, backbone), arch=args.arch, out=os.path.join(out, "direct_transfer")
    )
    started = time.perf_counter()
    _, evaluator, num_classes, _ = build_data(run, DistInfo(), run.height, run.width, train=False)
    model = build_model(run, num_classes, (run.height, run.width))
    digest = stage_digest(model.stages)
    metrics = evaluator(model, select_device(run.device), run.amp, DistInfo())
    return {
        "row": "direct transfer",
        **metrics,
        "parameters": count_parameters(model.stages),
        "epochs": 0,
        "time_s": time.perf_counter() - started,
        "curve": [(0, metrics["mAP"])],
        "start_digest": digest,
    }


def train_row(row, seed, args, data_dir, backbone, seed_dir):
    """Train one row for one seed; returns ``(record, trainer, evaluator, train_loader)``."""
    import torch

    from ..models import count_parameters
    from ..nn import set_state_mode
    from ..train import STD, DistInfo, FrozenTeacher, TrainConfig, Trainer, load_checkpoint
    from ..train.checkpoint import model_from_checkpoint
    from ..train.distill import check_feature_sizes
    from .dataset import build_data
    from .methods import rollback_hook
    from .options import train_options
    from .resume import run_meta
    from .run import build_loss, build_model, select_device

    options = {
        **common_options(args, data_dir, backbone),
        **row.options,
        "seed": seed,
        "out": os.path.join(seed_dir, row.folder),
    }
    if row.teacher:
        options["teacher"] = os.path.join(seed_dir, row.teacher, "last.pt")
    run = train_options(**options)
    device, info, size = select_device(run.device), DistInfo(), (run.height, run.width)
    train_loader, evaluator, num_classes, protocol = build_data(run, info, *size)
    model = _narrow_ptl(run, num_classes, size) if row.narrow else build_model(run, num_classes, size)
    if row.state_mode:
        set_state_mode(model, row.state_mode)
    record = {"row": row.name, "seed": seed, "start_digest": stage_digest(model.stages)}
    torch.manual_seed(run.seed)
    methods = []
    if run.teacher:  # not evaluated again: the PTL row's table line is its evaluation
        teacher = FrozenTeacher(model_from_checkpoint(load_checkpoint(run.teacher), run.teacher), device, run.amp)
        check_feature_sizes(model, teacher)
        methods.append(STD(teacher, run.std_lambda))
    rollback = rollback_hook(run, model)
    if rollback is not None:
        record["rollback_digest"] = snapshot_digest(rollback.pretrained)
        methods.append(rollback)
    config = TrainConfig(
        epochs=run.epochs,
        lr=run.lr,
        head_lr=run.head_lr,
        momentum=run.momentum,
        weight_decay=run.weight_decay,
        step_size=run.step_size,
        gamma=run.gamma,
        eval_every=run.eval_every,
        save_every=0,
        out_dir=run.out,
        progress=run.progress,
        title=f"{row.name} (seed {seed})",
        overwrite=True,
    )
    meta = run_meta(run, num_classes, protocol, count_parameters(model))
    trainer = Trainer(
        model,
        train_loader,
        config,
        evaluator=evaluator,
        loss_fn=build_loss(run),
        method=methods,
        device=device,
        info=info,
        meta=meta,
    )
    curve = []
    if args.ablations and run.arch.startswith("ptl_"):  # where the PTL network starts, for the probe
        curve.append((0, evaluator(model, device, False, info)["mAP"]))
        record["start_mAP"] = curve[0][1]
    started = time.perf_counter()
    trainer.fit()
    last = trainer.history[-1]
    record.update(
        {key: last[key] for key in demo_stats.METRICS},
        parameters=meta["parameters"],
        epochs=len(trainer.history),
        time_s=time.perf_counter() - started,
        curve=curve + [(r["epoch"], r["mAP"]) for r in trainer.history if r.get("mAP") is not None],
    )
    return record, trainer, evaluator, train_loader


def snapshot_digest(snapshot):
    """:func:`stage_digest` of a rolling-back snapshot (``{"stages.i.key": tensor}``)."""
    from ..train.checkpoint import content_digest

    return content_digest({name[len("stages.") :]: value for name, value in snapshot.items()})


def train_state_row(record, trainer, evaluator, train_loader):
    """Re-evaluate a trained PTL network from a state accumulated over its training set (not in the papers).

    Returns ``(record, probe)``: the row's record and ``{layer: (probe with zero state, probe with that
    state)}`` of :func:`ptl_ext.cli.demo_probe.bn_input_shift` on the query images.
    """
    from ..nn import accumulate_eval_states
    from .demo_probe import bn_input_shift

    model, device = trainer.module, trainer.device
    started = time.perf_counter()
    zero_shift = bn_input_shift(model, evaluator.query_loader, device)
    accumulate_eval_states(model, (batch[0].to(device) for batch in train_loader))
    metrics = evaluator(model, device, False, trainer.info)
    state_shift = bn_input_shift(model, evaluator.query_loader, device)
    for cell in model.cells:
        cell.set_eval_states(None)
    out = {
        "row": TRAIN_STATE_ROW,
        "seed": record["seed"],
        **metrics,
        "parameters": record["parameters"],
        "epochs": record["epochs"],
        "time_s": time.perf_counter() - started,
        "curve": [(record["epochs"], metrics["mAP"])],
        "start_digest": record["start_digest"],
    }
    return out, {name: (zero_shift[name], state_shift[name]) for name in zero_shift}


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
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


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
        f"{args.rollback_periods} periods x {period}), lr {args.lr:g} (heads {10 * args.lr:g}), training {seeds}"
    )


def run_demo(args):
    """Run the experiment (see the module docstring); returns ``{"records", "summary", "out", ...}``."""
    check_args(args)
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
            record, trainer, evaluator, train_loader = train_row(row, seed, args, data_dir, backbone, seed_dir)
            records.append(record)
            print(f"   {row.name}: mAP {100 * record['mAP']:.1f} %, {record['time_s']:.0f} s", flush=True)
            if row.extra == "train_state":
                extra, probe = train_state_row(record, trainer, evaluator, train_loader)
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
