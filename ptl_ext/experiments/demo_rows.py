"""One row of the demo for one seed: direct transfer, or a fine-tuning run (with the PTL ablations)."""

import os
import time

from . import demo_stats
from .demo_data import snapshot_digest, stage_digest

TRAIN_STATE_ROW = "PTL, eval w/ train state*"


# The fine-tuning recipe of every demo row: a mainstream ReID library's default (torchreid's softmax recipe:
# Adam at the demo's lr for every layer, label-smoothed cross-entropy, flips as the only augmentation), which
# on the demo's data beats the papers' SGD recipe by far (docs/strong_baseline.md).
RECIPE = {
    "optimizer": "adam",
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "triplet_weight": 0.0,
    "pad": 0,
    "erasing": 0.0,
}
RECIPE_TEXT = "Adam, label-smoothed cross-entropy, flips only"


def common_options(args, data_dir, backbone):
    """The run options every fine-tuning row shares: :data:`RECIPE` at ``args.lr`` for every layer."""
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
        **RECIPE,
        "epochs": args.epochs,
        "lr": args.lr,
        "head_lr": args.lr,
        "step_size": max(1, 2 * args.epochs // 3),
        "eval_every": period,
        "save_every": 0,
        "workers": args.workers,
        "device": "cpu",
        "progress": args.progress,
    }


def _direct_transfer(args, data_dir, backbone, out):
    """Evaluate the pre-trained backbone as is (no fine-tuning): a record without seed."""
    from ..models import count_parameters
    from ..runs import build_data, build_model, build_spec, select_device
    from ..train import DistInfo

    spec = build_spec(
        **common_options(args, data_dir, backbone), arch=args.arch, out=os.path.join(out, "direct_transfer")
    )
    started = time.perf_counter()
    _, evaluator, num_classes, _ = build_data(spec, DistInfo(), spec.height, spec.width, train=False)
    model = build_model(spec, num_classes, (spec.height, spec.width))
    digest = stage_digest(model.stages)
    metrics = evaluator(model, select_device(spec.device), spec.train.amp, DistInfo())
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
    """Train one row for one seed (a run of :func:`ptl_ext.runs.build_trainer`); returns
    ``(record, trainer)``. The STD teacher is not evaluated again: the PTL row's line is its evaluation."""
    from ..runs import build_spec, build_trainer, select_device
    from ..train import DistInfo, RollbackHook

    options = {
        **common_options(args, data_dir, backbone),
        **row.options,
        "seed": seed,
        "out": os.path.join(seed_dir, row.folder),
    }
    if row.teacher:
        options["teacher"] = os.path.join(seed_dir, row.teacher, "last.pt")
    spec = build_spec(**options)
    device, info = select_device(spec.device), DistInfo()
    trainer, _ = build_trainer(
        spec,
        device,
        info,
        evaluate_teacher=False,
        title=f"{row.name} (seed {seed})",
        save_every=0,
        checkpoints="final",
        overwrite=True,
    )
    model, evaluator = trainer.module, trainer.evaluator
    record = {"row": row.name, "seed": seed, "start_digest": stage_digest(model.stages)}
    for hook in trainer.hooks:
        if isinstance(hook, RollbackHook):
            record["rollback_digest"] = snapshot_digest(hook.pretrained)
    curve = []
    if args.ablations and spec.model.arch.startswith("ptl_"):  # where the PTL network starts, for the probe
        curve.append((0, evaluator(model, device, False, info)["mAP"]))
        record["start_mAP"] = curve[0][1]
    started = time.perf_counter()
    trainer.fit()
    last = trainer.history[-1]
    record.update(
        {key: last[key] for key in demo_stats.METRICS},
        parameters=trainer.meta["parameters"],
        epochs=len(trainer.history),
        time_s=time.perf_counter() - started,
        curve=curve + [(r["epoch"], r["mAP"]) for r in trainer.history if r.get("mAP") is not None],
    )
    return record, trainer


def train_state_row(record, trainer):
    """Re-evaluate a trained PTL network from a state accumulated over its training set (not in the papers).

    Returns ``(record, probe)``: the row's record and ``{layer: (probe with zero state, probe with that
    state)}`` of :func:`ptl_ext.experiments.demo_probe.bn_input_shift` on the query images.
    """
    from ..nn import accumulate_eval_states
    from .demo_probe import bn_input_shift

    model, device, evaluator = trainer.module, trainer.device, trainer.evaluator
    started = time.perf_counter()
    zero_shift = bn_input_shift(model, evaluator.query_loader, device)
    accumulate_eval_states(model, (batch[0].to(device) for batch in trainer.train_loader))
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
