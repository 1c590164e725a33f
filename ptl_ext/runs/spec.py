"""``RunSpec``: the one frozen description of a training run, and its parts.

A run is described by :class:`~ptl_ext.train.TrainConfig` (optimisation, cadence, run folder),
:class:`~ptl_ext.data.config.DataConfig` (loaders), :class:`ModelOptions`, :class:`LossOptions`,
:class:`MethodOptions` (STD, rolling back, chained fine-tuning), :class:`EvalOptions` with
:class:`~ptl_ext.reid.RerankConfig` and :class:`~ptl_ext.reid.AQEConfig`, and a few run-wide fields
(dataset, input size, seed, device). Each part checks its own values when it is built; the checks
between parts and the defaults that depend on the network (input size, MGN's recipe) are in
:func:`ptl_ext.runs.resolve.build_spec`.

Options are named by their ``ptl train`` destinations (``lr``, ``p``, ``out``, ``aqe_k`` ...): every field of
a part is the option of the same name, except the few in :data:`RENAMED`. Adding an option is a field in the
right part (its default is the option's default) plus its declaration in :mod:`ptl_ext.cli`.
"""

import dataclasses
from dataclasses import dataclass, field

from .. import _checks
from .._defaults import default_of
from ..data.config import DataConfig
from ..models._registry import HEAD_INITS, HEAD_NAMES, MGN_REDUCTIONS
from ..nn import STATE_MODES
from ..reid.config import AQEConfig, RerankConfig
from ..train.config import TrainConfig
from ..train.evaluation import ReIDEvaluator
from ..train.losses import ReIDLoss
from ..train.rolling_back import RollbackSchedule

__all__ = ["RunSpec", "ModelOptions", "LossOptions", "MethodOptions", "EvalOptions", "RENAMED", "NOT_OPTIONS"]

LOSSES = ("auto", "ce", "mgn")
# rolling back: per_period (every period has ``period_epochs`` epochs, the paper) or shared (``epochs`` split
# equally between the periods); roll_back (the paper's method) or base_cy (the same periods, nothing rolled back)
ROLLBACK_BUDGETS = ("per_period", "shared")
ROLLBACK_MODES = ("roll_back", "base_cy")
TASKS = ("reid", "classification")


def _optional_text(value, name):
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r}")
    return value


@dataclass(frozen=True)
class ModelOptions:
    """The network: ``arch`` (a zoo name), its starting weights (``pretrained`` torchvision file or
    ``init_from`` ptl checkpoint), ``last_stride``, the ``head`` (one of :data:`~ptl_ext.models._registry.HEAD_NAMES`;
    ``None``: resolved, ``cifar`` for classification and ``reid`` otherwise), how the head's layers start
    (``head_init``, ``torch`` or ``he``), MGN's ``mgn_reductions`` (``separate`` or ``shared``), head
    ``dropout`` (``None``: the head's default) and the PTL ablations ``side_width`` and ``cell_state`` (one of
    :data:`~ptl_ext.nn.STATE_MODES`)."""

    arch: str = "ptl_resnet50"
    pretrained: str = None
    last_stride: int = 1
    head: str = None
    head_init: str = HEAD_INITS[0]
    mgn_reductions: str = MGN_REDUCTIONS[0]
    dropout: float = None
    init_from: str = None
    side_width: float = 1.0
    cell_state: str = STATE_MODES[0]

    def __post_init__(self):
        _optional_text(self.arch, "arch")
        _optional_text(self.pretrained, "pretrained")
        _optional_text(self.init_from, "init_from")
        _checks.choice(self.last_stride, "last_stride", (1, 2))
        if self.head is not None:
            _checks.choice(self.head, "head", HEAD_NAMES)
        _checks.choice(self.head_init, "head_init", HEAD_INITS)
        _checks.choice(self.mgn_reductions, "mgn_reductions", MGN_REDUCTIONS)
        _checks.real(self.dropout, "dropout", 0.0, allow_none=True)
        _checks.real(self.side_width, "side_width", 0.0, exclusive_minimum=True)
        _checks.choice(self.cell_state, "cell_state", STATE_MODES)


@dataclass(frozen=True)
class LossOptions:
    """The supervised loss: ``loss`` (``auto``, ``ce`` or ``mgn``), label smoothing and the batch-hard triplet
    term (``triplet_weight``, ``triplet_margin``; negative margin = soft margin; ``None``: resolved)."""

    label_smoothing: float = default_of(ReIDLoss, "label_smoothing")
    loss: str = "auto"
    triplet_weight: float = None
    triplet_margin: float = None

    def __post_init__(self):
        _checks.real(self.label_smoothing, "label_smoothing", 0.0)
        _checks.choice(self.loss, "loss", LOSSES)
        _checks.real(self.triplet_weight, "triplet_weight", 0.0, allow_none=True)
        _checks.real(self.triplet_margin, "triplet_margin", allow_none=True)


@dataclass(frozen=True)
class MethodOptions:
    """The training methods: STD (``teacher`` checkpoint, ``std_lambda``), rolling back (``rollback_periods``,
    0 = off; ``period_epochs``, ``rollback_budget`` and ``rollback_mode`` (one of :data:`ROLLBACK_BUDGETS`,
    :data:`ROLLBACK_MODES`; ``None``: resolved, the first, when rolling back), ``rollback_keep`` (two periods:
    period 2 keeps only block N), ``period_decay_epoch``, ``kept_lr``) and chained fine-tuning (``chain``)."""

    teacher: str = None
    std_lambda: float = None
    rollback_periods: int = 0
    period_epochs: int = default_of(RollbackSchedule, "epochs_per_period")
    rollback_budget: str = None
    rollback_mode: str = None
    rollback_keep: int = None
    period_decay_epoch: int = None
    kept_lr: float = None
    chain: str = None

    def __post_init__(self):
        _optional_text(self.teacher, "teacher")
        _optional_text(self.chain, "chain")
        _checks.real(self.std_lambda, "std_lambda", 0.0, 1.0, allow_none=True)
        _checks.integer(self.rollback_periods, "rollback_periods", minimum=0)
        _checks.positive_int(self.period_epochs, "period_epochs")
        if self.rollback_budget is not None:
            _checks.choice(self.rollback_budget, "rollback_budget", ROLLBACK_BUDGETS)
        if self.rollback_mode is not None:
            _checks.choice(self.rollback_mode, "rollback_mode", ROLLBACK_MODES)
        for name in ("rollback_keep", "period_decay_epoch"):
            if getattr(self, name) is not None:
                _checks.positive_int(getattr(self, name), name)
        _checks.real(self.kept_lr, "kept_lr", 0.0, allow_none=True)

    @property
    def names(self):
        """The methods in use, e.g. ``("std",)``, ``("rolling_back",)`` or ``()``."""
        return tuple(name for name, on in (("std", self.teacher), ("rolling_back", self.rollback_periods)) if on)


@dataclass(frozen=True)
class EvalOptions:
    """How test features are compared: ``metric``, re-ranking, flip-summed and L2-normalised features."""

    metric: str = default_of(ReIDEvaluator, "metric")
    rerank: bool = default_of(ReIDEvaluator, "rerank")
    flip: bool = default_of(ReIDEvaluator, "flip")
    normalize: bool = default_of(ReIDEvaluator, "normalize")

    def __post_init__(self):
        _checks.choice(self.metric, "metric", ("euclidean", "cosine"))
        for name in ("rerank", "flip", "normalize"):
            _checks.boolean(getattr(self, name), name)


# option name -> (part, field) where they differ
RENAMED = {"out": ("train", "out_dir"), "aqe_k": ("aqe", "k"), "aqe_alpha": ("aqe", "alpha")}
# fields of the parts that are not options (set by the layer that runs the spec)
NOT_OPTIONS = {("train", "title"), ("train", "checkpoints")}


@dataclass(frozen=True)
class RunSpec:
    """Everything a ``ptl train`` run is (see the module docstring); build it with
    :func:`ptl_ext.runs.build_spec` (defaults resolved, options checked against each other) or
    :meth:`from_options` (values taken as they are)."""

    dataset: str = "market1501"
    root: str = None
    task: str = None
    height: int = None
    width: int = None
    seed: int = 0
    resume: str = None
    device: str = None
    tensorboard: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelOptions = field(default_factory=ModelOptions)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossOptions = field(default_factory=LossOptions)
    method: MethodOptions = field(default_factory=MethodOptions)
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    rerank: RerankConfig = field(default_factory=RerankConfig)
    aqe: AQEConfig = field(default_factory=AQEConfig)

    def __post_init__(self):
        for name in ("dataset", "root", "resume", "device"):
            _optional_text(getattr(self, name), name)
        if self.task is not None:
            _checks.choice(self.task, "task", TASKS)
        for name in ("height", "width"):
            if getattr(self, name) is not None:
                _checks.positive_int(getattr(self, name), name)
        _checks.integer(self.seed, "seed", minimum=0)
        _checks.boolean(self.tensorboard, "tensorboard")
        for name, kind in _PARTS.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"RunSpec.{name} must be a {kind.__name__}, got {getattr(self, name)!r}")

    @classmethod
    def from_options(cls, values):
        """The spec of ``values`` (a dict keyed by option name; absent options keep their defaults).

        Raises ``ValueError`` naming an unknown option; each part checks its values.
        """
        top, parts = {}, {name: {} for name in _PARTS}
        for key, value in values.items():
            where = _LOCATION.get(key)
            if where is None:
                raise ValueError(f"RunSpec: unknown option {key!r}")
            if where[0] is None:
                top[key] = value
            else:
                parts[where[0]][where[1]] = value
        return cls(**top, **{name: kind(**parts[name]) for name, kind in _PARTS.items()})

    def options(self):
        """The flat ``{option name: value}`` of the spec (the inverse of :meth:`from_options`)."""
        return {key: self.option(key) for key in _LOCATION}

    def option(self, key):
        """The value of option ``key``."""
        part, name = _LOCATION[key]
        return getattr(self, name) if part is None else getattr(getattr(self, part), name)

    def replace(self, **values):
        """A copy with some options (by option name) replaced; the changed parts check their values again."""
        return type(self).from_options({**self.options(), **values})


_PARTS = {
    "data": DataConfig,
    "model": ModelOptions,
    "train": TrainConfig,
    "loss": LossOptions,
    "method": MethodOptions,
    "evaluation": EvalOptions,
    "rerank": RerankConfig,
    "aqe": AQEConfig,
}


def _locations():
    """``{option name: (part or None, field)}`` in the parts' field order."""
    where = {f.name: (None, f.name) for f in dataclasses.fields(RunSpec) if f.name not in _PARTS}
    renamed = {value: key for key, value in RENAMED.items()}
    for part, kind in _PARTS.items():
        for f in dataclasses.fields(kind):
            if (part, f.name) in NOT_OPTIONS:
                continue
            key = renamed.get((part, f.name), f.name)
            if key in where:
                raise RuntimeError(f"RunSpec: option {key} is a field of two parts")
            where[key] = (part, f.name)
    return where


_LOCATION = _locations()
