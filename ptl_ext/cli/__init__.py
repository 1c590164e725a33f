"""The ``ptl`` command: ``ptl demo | train | eval | synth | pretrain | extract | export | info | study`` (also
``python -m ptl_ext``).

The command line only turns argv or a config file into a :class:`~ptl_ext.runs.RunSpec` (``ptl train``) or a
command's options, calls the layer below (:mod:`ptl_ext.runs`, :mod:`ptl_ext.experiments`, :mod:`ptl_ext.deploy`,
:mod:`ptl_ext.data`) and prints. One job per module: ``parser``, ``train_args`` and ``run_args`` (the options
and their checks), ``option_types``, ``options`` (config files, ``argv`` to a checked namespace and its
RunSpec), one module per command (``train``, ``evaluate``, ``demo``, ``synth``, ``pretrain``, ``extract``,
``export``, ``info``, ``study``) and ``report`` (``--dry-run`` settings, paper tables). :func:`main` dispatches.

Options can also come from a TOML file (``--config run.toml``; YAML too when PyYAML is
installed) whose keys are the long option names (``step_size`` or ``step-size``); options given
on the command line win over the file. Distributed training: ``torchrun --nproc_per_node N -m
ptl_ext train ...`` (gloo on CPU, nccl on CUDA).
"""

import sys

from ..errors import OptionError
from ..runs.chain import parse_chain
from ..runs.report import format_table
from .evaluate import run_eval
from .options import load_config_file, parse_args, train_options
from .parser import build_parser
from .train import run_chain, run_train

__all__ = [
    "main",
    "build_parser",
    "parse_args",
    "load_config_file",
    "train_options",
    "run_train",
    "run_eval",
    "run_chain",
    "parse_chain",
    "format_table",
    "OptionError",
]


def _commands():
    from .demo import run_demo
    from .export import run_export
    from .extract import run_extract
    from .info import run_info
    from .pretrain import run_pretrain
    from .study import run_study
    from .synth import run_synth

    return {
        "demo": run_demo,
        "train": run_train,
        "eval": run_eval,
        "synth": run_synth,
        "pretrain": run_pretrain,
        "extract": run_extract,
        "export": run_export,
        "info": run_info,
        "study": run_study,
    }


def _user_errors():
    """Exception types caused by what the user gave (options, files, data, folders), printed as one line."""
    from ..errors import UserError

    return (UserError, ValueError, OSError)  # a missing optional package is a UserError (MissingPackageError)


def main(argv=None):
    """Entry point of the ``ptl`` console script; returns the exit status (2 for a user error).

    A user error (a bad option, a missing file, unusable data) is printed as one line; anything else
    is a bug and keeps its traceback. Ctrl-C and SIGTERM stop it with one line (for ``train``, how to
    resume) and status 130 / 143 (:mod:`ptl_ext._signals`). ``ptl --debug ...`` shows the traceback
    of user errors too.
    """
    from .._signals import exit_status, interruption_message, stop_on_sigterm

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = argv[:1] == ["--debug"]
    args = None
    try:
        with stop_on_sigterm():
            args = parse_args(argv)
            _commands()[args.command](args)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: 130 / 143 and a resume hint, no traceback
        out = getattr(args, "out", None) if getattr(args, "command", None) == "train" else None
        print(f"ptl: {interruption_message(exc, out)}", file=sys.stderr)
        return exit_status(exc)
    except _user_errors() as exc:
        if debug:
            raise
        print(f"ptl: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0
