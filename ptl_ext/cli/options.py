"""From ``argv``, a config file or a dict of values to one checked ``argparse.Namespace`` per command.

Config-file values (TOML, or YAML with PyYAML) and the option dicts the demo builds go through the
same checks as the command line (types, choices, ranges); an unknown key is an error naming it.
A config file may also hold a ``[paper]`` table, the numbers a paper reports for the row: it is
checked on its own and kept aside as ``args.paper``, never an option. All of this happens before
any data is read. ``ptl train``'s options become a :class:`~ptl_ext.runs.RunSpec` (``args.spec``) in
:func:`resolve_train_options`; the namespace then holds the spec's resolved values, for printing.
"""

import argparse
import os
import sys

from ..errors import OptionError
from .option_types import Number, check_value
from .parser import build_parser, command_of

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
    if options.get("overwrite", False) is not False:  # deleting a run is asked on the command line only
        raise OptionError(
            f"--config {path}: overwrite deletes the run already in --out, so it is taken only from the "
            "command line (--overwrite), not from a config file"
        )
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
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, commands = build_parser(only=command_of(argv) or "")
    args = parser.parse_args(argv)
    paper = None
    if getattr(args, "config", None):
        sub = commands[args.command]
        options, paper = read_config(args.config)
        sub.set_defaults(**checked_values(sub, options, f"--config {args.config}"))
        args = parser.parse_args(argv)
    args.paper = paper
    return resolve_train_options(args) if args.command == "train" else args


def command_options(command, values, argv=()):
    """The namespace of ``ptl COMMAND`` with ``values`` (option dests) over the defaults, checked like a
    config file; ``argv`` supplies the options the command requires (parsed, then overridden by ``values``)."""
    _, commands = build_parser(only=command)
    sub = commands[command]
    args = sub.parse_args(list(argv))
    args.command, args.debug, args.paper = command, False, None
    for key, value in checked_values(sub, values, f"ptl {command}").items():
        setattr(args, key, value)
    return args


def train_options(**values):
    """The namespace of ``ptl train`` with ``values`` (option dests) over the defaults, checked and resolved.

    No argv strings, the same checks as a config file; its ``spec`` is the run's
    :class:`~ptl_ext.runs.RunSpec` (Python code builds one directly with :func:`ptl_ext.runs.build_spec`).
    """
    return resolve_train_options(command_options("train", values))


def resolve_train_options(args):
    """The ``ptl train`` namespace ``args`` resolved: its :class:`~ptl_ext.runs.RunSpec` (built by
    :func:`ptl_ext.runs.build_spec`, which checks the options against each other and fills the defaults that
    depend on them) as ``args.spec``, and every option's resolved value (names canonical: dataset and network
    aliases resolved, ``--v2`` folded into ``ptl_v2_*``). Returns a new namespace; ``args`` is left as it was.
    """
    from ..runs.resolve import build_spec
    from ..runs.spec import RunSpec

    given = vars(args)
    names = RunSpec().options()
    spec = build_spec(v2=given["v2"], **{key: value for key, value in given.items() if key in names})
    resolved = {key: spec.option(key) if key in names else value for key, value in given.items()}
    return argparse.Namespace(**{**resolved, "v2": False, "spec": spec})
