"""Building a :class:`~ptl_ext.runs.spec.RunSpec`: options checked against each other, and the defaults
that depend on the dataset, the network or the method filled in (the only place this happens)."""

from ..errors import OptionError
from .spec import RunSpec

# options whose default depends on the dataset, the network or the method (filled in when not given)
RESOLVED = ("task", "head", "height", "width", "p", "triplet_weight", "triplet_margin", "std_lambda")
# a method's option -> the option that turns the method on
METHOD_OPTIONS = {"std_lambda": "teacher", "kept_lr": "rollback_periods", "period_decay_epoch": "rollback_periods"}


def build_spec(**options):
    """The :class:`RunSpec` of ``options`` (option names, e.g. ``arch="resnet50", lr=0.02``), resolved.

    Names become canonical (dataset and network aliases resolved); ``loss="auto"`` becomes ``mgn`` for the
    MGN networks and ``ce`` otherwise; the head is ``cifar`` for classification and ``reid`` otherwise (MGN:
    only ``reid``, its own heads); the input size defaults to the dataset's (CIFAR) or the network's,
    P and the triplet terms to MGN's recipe for MGN; ``task`` is the dataset's. Raises
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
    if values["cell_state"] != "carry" and not network.ptl:
        raise OptionError(f"--cell-state: only for the PTL networks (ptl_*), not for --arch {arch}")
    if values["pretrained"] and values["init_from"]:
        raise OptionError("--pretrained and --init-from both set the starting weights: give one of them")
    if values["resume"] and values["overwrite"]:
        raise OptionError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if mgn and values["head"] not in (None, "reid"):
        raise OptionError(f"--head {values['head']}: the MGN networks have their own ReID heads (--head reid)")
    height, width = dataset.image_size or network.input_size
    defaults = {
        "head": "cifar" if dataset.task == "classification" else "reid",
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
    return RunSpec.from_options(values)
