"""Building a :class:`~ptl_ext.runs.spec.RunSpec`: options checked against each other, and the defaults
that depend on the dataset, the network or the method filled in (the only place this happens)."""

from ..errors import OptionError
from .spec import ROLLBACK_BUDGETS, ROLLBACK_MODES, RunSpec

# options whose default depends on the dataset, the network or the method (filled in when not given)
RESOLVED = ("task", "height", "width", "head", "p", "triplet_weight", "triplet_margin", "std_lambda")
# a method's option -> the option that turns the method on
METHOD_OPTIONS = {
    "std_lambda": "teacher",
    "kept_lr": "rollback_periods",
    "period_decay_epoch": "rollback_periods",
    "rollback_budget": "rollback_periods",
    "rollback_mode": "rollback_periods",
    "rollback_keep": "rollback_periods",
}


def build_spec(**options):
    """The :class:`RunSpec` of ``options`` (option names, e.g. ``arch="resnet50", lr=0.02``), resolved.

    Names become canonical (dataset and network aliases resolved); ``loss="auto"`` becomes ``mgn`` for the
    MGN networks and ``ce`` otherwise; the input size defaults to the dataset's (CIFAR) or the network's,
    P and the triplet terms to MGN's recipe for MGN; ``task`` is the dataset's; the head is ``cifar`` for
    classification and ``reid`` otherwise (MGN: only ``reid``, its own heads); rolling back's budget and mode
    are the first of :data:`~ptl_ext.runs.spec.ROLLBACK_BUDGETS` / :data:`~ptl_ext.runs.spec.ROLLBACK_MODES`. Raises
    :class:`~ptl_ext.errors.OptionError` naming the options that do not go together.
    """
    from .._defaults import default_of
    from ..data import get_dataset, list_datasets
    from ..data.config import DataConfig
    from ..models._registry import model_info
    from ..train.distill import DEFAULT_STD_LAMBDA
    from ..train.losses import ReIDLoss
    from ..train.mgn_loss import MGN_RECIPE

    values = {**RunSpec().options(), **dict.fromkeys(RESOLVED), **options}
    dataset = get_dataset(values["dataset"])
    values["dataset"] = dataset.name
    if values["task"] is not None and values["task"] != dataset.task:
        raise OptionError(
            f"--task {values['task']} does not fit --dataset {dataset.name} (a {dataset.task} dataset); "
            f"classification needs --dataset {' or '.join(list_datasets('classification'))}"
        )
    values["task"] = dataset.task
    v2 = values.pop("v2", False)
    arch = values["arch"]
    try:
        network = model_info(arch, v2)
    except ValueError as exc:
        raise OptionError(f"--arch {arch}{' --v2' if v2 else ''}: {exc}") from None
    values["arch"] = arch = network.name
    mgn = network.family == "mgn"
    if values["loss"] == "auto":
        values["loss"] = "mgn" if mgn else "ce"
    if (values["loss"] == "mgn") != mgn:
        raise OptionError(
            f"--loss {values['loss']} does not fit --arch {arch}: --loss mgn goes with (and only with) the MGN networks"
        )
    for name, needs in METHOD_OPTIONS.items():
        if values[name] is not None and not values[needs]:
            raise OptionError(f"--{name.replace('_', '-')} applies only with --{needs.replace('_', '-')}")
    if values["side_width"] != 1.0 and (mgn or not network.ptl):
        raise OptionError(
            f"--side-width: only for the PTL network of a backbone (ptl_NAME, ptl_v2_NAME), not for --arch {arch}"
        )
    if values["head"] is None:
        values["head"] = _head_of(dataset.task)
    elif dataset.task == "classification" and values["head"] != "cifar":
        raise OptionError(f"--head {values['head']}: a ReID head; {dataset.name} runs use the cifar head")
    elif dataset.task != "classification" and values["head"] == "cifar":
        raise OptionError(
            f"--head cifar: the CIFAR head; {dataset.name} runs use a ReID head "
            "(reid, rolling_back, bnneck, bnneck_pre)"
        )
    if mgn and (values["head"] != "reid" or values["head_init"] != "torch"):
        raise OptionError(
            f"--head {values['head']} --head-init {values['head_init']}: MGN has its own (He-initialised) "
            f"classifiers, not for --arch {arch}"
        )
    if values["mgn_reductions"] != "separate" and not mgn:
        raise OptionError(f"--mgn-reductions: only for the MGN networks, not for --arch {arch}")
    if values["cell_state"] != "carry" and not network.ptl:
        raise OptionError(f"--cell-state: only for the PTL networks (ptl_*), not for --arch {arch}")
    if values["rollback_periods"]:
        _check_rollback(values)
    if values["pretrained"] and values["init_from"]:
        raise OptionError("--pretrained and --init-from both set the starting weights: give one of them")
    if values["resume"] and values["overwrite"]:
        raise OptionError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    height, width = dataset.image_size or network.input_size
    defaults = {
        "height": height,
        "width": width,
        "p": default_of(DataConfig, "p"),
        "triplet_weight": default_of(ReIDLoss, "triplet_weight"),
        "triplet_margin": default_of(ReIDLoss, "triplet_margin"),
        "std_lambda": DEFAULT_STD_LAMBDA,
    }
    if mgn:
        defaults.update(MGN_RECIPE)
    for name, value in defaults.items():
        if values.get(name) is None:
            values[name] = value
    if dataset.image_size and (values["height"], values["width"]) != tuple(dataset.image_size):
        raise OptionError(
            f"--height/--width: {dataset.name} images are {height}x{width}, got {values['height']}x{values['width']}"
        )
    triplet = values["loss"] == "mgn" or values["triplet_weight"] > 0
    if values["sampler"] == "random" and dataset.task == "reid" and triplet:
        raise OptionError("--sampler random: a triplet loss needs P x K batches (--sampler pk)")
    return RunSpec.from_options(values)


def _head_of(task):
    """The head of a ``task``'s runs, when ``--head`` is not given (``"cifar"`` or ``"reid"``)."""
    return "cifar" if task == "classification" else "reid"


def _check_rollback(values):
    """Check the rolling-back options against each other and fill ``rollback_budget`` / ``rollback_mode``."""
    values["rollback_budget"] = values["rollback_budget"] or ROLLBACK_BUDGETS[0]
    values["rollback_mode"] = values["rollback_mode"] or ROLLBACK_MODES[0]
    periods, epochs = values["rollback_periods"], values["epochs"]
    if values["rollback_budget"] == "shared" and epochs % periods:
        raise OptionError(
            f"--rollback-budget shared: --epochs {epochs} must be a multiple of --rollback-periods {periods}"
        )
    if values["rollback_keep"] is not None and periods != 2:
        raise OptionError(
            f"--rollback-keep: keeping one block is a two-period scheme, got --rollback-periods {periods}"
        )
