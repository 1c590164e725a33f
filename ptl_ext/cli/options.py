"""From ``argv``, a config file or a dict of values to one checked ``argparse.Namespace`` per command.

Config-file values (TOML, or YAML with PyYAML) and the option dicts the demo builds go through the
same checks as the command line (types, choices, ranges); an unknown key is an error naming it.
A config file may also hold a ``[paper]`` table, the numbers a paper reports for the row: it is
checked on its own and kept aside as ``args.paper``, never an option. All of this happens before
any data is read. Options whose default depends on the network or on the method are filled in by
:func:`resolve_train_options`.
"""

import argparse
import os

from .option_types import Number, check_value
from .parser import build_parser

METHOD_OPTIONS = {"std_lambda": "teacher", "kept_lr": "rollback_periods", "period_decay_epoch": "rollback_periods"}


class OptionError(ValueError):
    """An option value (from the command line, a config file or the demo) that cannot be used."""


PAPER_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP", "top1_error")
PAPER_TEXT = ("source", "pretrained", "note")


def read_config(path):
    """``(options, paper)`` of a TOML (or, with PyYAML installed, YAML) config file.

    ``options``: the flat ``option = value`` pairs with ``_`` keys (checked later against the parser);
    ``paper``: the optional ``[paper]`` table (the row's reported numbers, see :func:`checked_paper`),
    kept aside and never an option; ``None`` when the file has none.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config: file {path} does not exist")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise OptionError(
                f"--config {path}: YAML needs PyYAML (pip install pyyaml); TOML works without it"
            ) from None
        with open(path) as fh:
            try:
                values = yaml.safe_load(fh) or {}
            except yaml.YAMLError as exc:
                raise OptionError(f"--config {path}: invalid YAML: {exc}") from exc
    else:
        import tomllib

        with open(path, "rb") as fh:
            try:
                values = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise OptionError(f"--config {path}: invalid TOML: {exc}") from exc
    if not isinstance(values, dict):
        raise OptionError(f"--config {path}: expected flat `option = value` pairs")
    values = dict(values)
    paper = values.pop("paper", None)
    if any(isinstance(v, dict) for v in values.values()):
        raise OptionError(f"--config {path}: expected flat `option = value` pairs (and at most a [paper] table)")
    options = {key.replace("-", "_"): value for key, value in values.items()}
    return options, None if paper is None else checked_paper(paper, f"--config {path}")


def load_config_file(path):
    """Option values from a TOML (or YAML) file as a flat dict with ``_`` keys (its ``[paper]`` table left out)."""
    return read_config(path)[0]


def checked_paper(paper, source):
    """A config file's ``[paper]`` table checked: the numbers a paper reports for the row.

    Keys: ``mAP``, ``rank1``, ``rank5``, ``rank10``, ``mINP``, ``top1_error`` (percent, as papers print
    them, in [0, 100]), ``parameters`` (a count, > 0), ``source``, ``pretrained`` (the torchvision
    checkpoint the row starts from) and ``note`` (strings). Raises :class:`OptionError` naming a wrong key.
    """
    if not isinstance(paper, dict):
        raise OptionError(f"{source}: [paper] must be a table, got {paper!r}")
    unknown = sorted(set(paper) - set(PAPER_METRICS) - set(PAPER_TEXT) - {"parameters"})
    if unknown:
        raise OptionError(
            f"{source}: [paper]: unknown keys {', '.join(unknown)}; expected some of "
            f"{', '.join((*PAPER_METRICS, 'parameters', *PAPER_TEXT))}"
        )
    checks = {**dict.fromkeys(PAPER_METRICS, Number(float, 0.0, 100.0)), "parameters": Number(int, 1)}
    checked = {}
    for key, value in paper.items():
        if key in PAPER_TEXT:
            if not isinstance(value, str):
                raise OptionError(f"{source}: [paper] {key}: expected a string, got {value!r}")
            checked[key] = value
            continue
        try:
            checked[key] = checks[key].check(value)
        except argparse.ArgumentTypeError as exc:
            unit = " (percent)" if key in PAPER_METRICS else ""
            raise OptionError(f"{source}: [paper] {key}{unit}: {exc}") from None
    return checked


def checked_values(subparser, values, source):
    """``values`` (a dict keyed by option dest) checked against ``subparser``'s options.

    ``source`` names where they came from in errors (``--config run.toml``). Raises
    :class:`OptionError` naming the first unknown key or wrong value.
    """
    actions = {}
    for action in subparser._actions:
        if action.dest != "help":  # by dest and by long option name: lambda_value and lambda, aqe_k and aqe
            actions[action.dest] = action
            actions.update(
                {
                    name[2:].replace("-", "_"): action
                    for name in action.option_strings
                    if name.startswith("--") and not name.startswith("--no-")
                }
            )
    unknown = sorted(set(values) - set(actions) - {"config"})
    if unknown:
        raise OptionError(f"{source}: unknown options {', '.join(unknown)}")
    checked = {}
    for key, value in values.items():
        if key == "config":
            continue
        try:
            checked[actions[key].dest] = check_value(actions[key], value)
        except argparse.ArgumentTypeError as exc:
            raise OptionError(f"{source}: option {key}: {exc}") from None
    return checked


def parse_args(argv=None):
    """Parse ``argv``, filling defaults from ``--config`` when given; returns the checked namespace.

    ``args.paper`` holds the config file's ``[paper]`` table (``None`` without one).
    """
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    paper = None
    if getattr(args, "config", None):
        sub = commands[args.command]
        options, paper = read_config(args.config)
        sub.set_defaults(**checked_values(sub, options, f"--config {args.config}"))
        args = parser.parse_args(argv)
    args.paper = paper
    if args.command == "train":
        resolve_train_options(args)
    return args


def command_options(command, values, argv=()):
    """The namespace of ``ptl COMMAND`` with ``values`` (option dests) over the defaults, checked like a
    config file; ``argv`` supplies the options the command requires (parsed, then overridden by ``values``)."""
    _, commands = build_parser()
    sub = commands[command]
    args = sub.parse_args(list(argv))
    args.command, args.debug, args.paper = command, False, None
    for key, value in checked_values(sub, values, f"ptl {command}").items():
        setattr(args, key, value)
    return args


def train_options(**values):
    """The namespace of ``ptl train`` with ``values`` (option dests) over the defaults, checked and resolved.

    What the demo builds its runs from: no argv strings, the same checks as a config file.
    """
    args = command_options("train", values)
    resolve_train_options(args)
    return args


def resolve_train_options(args):
    """Check ``ptl train`` options against each other and fill the defaults that depend on them.

    Names become canonical (dataset and network aliases resolved, ``--v2`` folded into ``ptl_v2_*``).
    """
    from ..data import get_dataset, list_datasets
    from ..data.config import DataConfig
    from ..models import model_info
    from ..train import ReIDLoss
    from ..train.distill import DEFAULT_STD_LAMBDA
    from ..train.mgn_loss import MGN_RECIPE
    from .option_types import default_of

    dataset = get_dataset(args.dataset)
    args.dataset = dataset.name
    if args.task is not None and args.task != dataset.task:
        raise OptionError(
            f"--task {args.task} does not fit --dataset {args.dataset} (a {dataset.task} dataset); "
            f"classification needs --dataset {' or '.join(list_datasets('classification'))}"
        )
    args.task = dataset.task
    try:
        network = model_info(args.arch, args.v2)
    except ValueError as exc:
        raise OptionError(f"--arch {args.arch}{' --v2' if args.v2 else ''}: {exc}") from None
    args.arch, args.v2 = network.name, False
    mgn = network.family == "mgn"
    if args.loss == "auto":
        args.loss = "mgn" if mgn else "ce"
    if (args.loss == "mgn") != mgn:
        raise OptionError(
            f"--loss {args.loss} does not fit --arch {args.arch}: --loss mgn goes with (and only with) the MGN networks"
        )
    for name, needs in METHOD_OPTIONS.items():
        if getattr(args, name) is not None and not getattr(args, needs):
            raise OptionError(f"--{name.replace('_', '-')} applies only with --{needs.replace('_', '-')}")
    if args.side_width != 1.0 and (mgn or not network.ptl):
        raise OptionError(
            f"--side-width: only for the PTL network of a backbone (ptl_NAME, ptl_v2_NAME), not for --arch {args.arch}"
        )
    if args.cell_state != "carry" and not network.ptl:
        raise OptionError(f"--cell-state: only for the PTL networks (ptl_*), not for --arch {args.arch}")
    if args.pretrained and args.init_from:
        raise OptionError("--pretrained and --init-from both set the starting weights: give one of them")
    if args.resume and args.overwrite:
        raise OptionError("--resume continues the run in --out, --overwrite replaces it: give one of them")
    if mgn and args.head not in (None, "reid"):
        raise OptionError(f"--head {args.head}: the MGN networks have their own ReID heads (--head reid)")
    height, width = dataset.image_size or network.input_size
    defaults = {
        "head": "cifar" if args.task == "classification" else "reid",
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
        if getattr(args, name) is None:
            setattr(args, name, value)
    if dataset.image_size and (args.height, args.width) != tuple(dataset.image_size):
        raise OptionError(
            f"--height/--width: {args.dataset} images are {height}x{width}, got {args.height}x{args.width}"
        )
