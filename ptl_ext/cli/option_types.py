"""Option types of the ``ptl`` parser: ranged numbers, flags, defaults read from their homes, and the
check that a config file's value gets (the same as the command line's).
"""

import argparse
import math

from .. import _checks
from .._defaults import default_of
from ..errors import OptionError

__all__ = ["Number", "Parser", "check_value", "count", "default_of", "flag", "rate"]


class Number:
    """An argparse ``type`` for ints or floats within a range, also usable on a config file's values.

    Called on a string (the command line) it parses it; :meth:`check` takes an already-typed value
    (a TOML number) and refuses strings and booleans. Both raise ``argparse.ArgumentTypeError``.
    """

    def __init__(self, kind, minimum=None, maximum=None, exclusive_minimum=False, below=None):
        self.kind, self.minimum, self.maximum = kind, minimum, maximum
        self.exclusive_minimum, self.below = exclusive_minimum, below
        self.__name__ = kind.__name__  # argparse names the type in its messages

    def __call__(self, text):
        if not isinstance(text, str):
            return self.check(text)
        try:
            value = self.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self._what()}, got {text!r}") from None
        return self.check(value)

    def _what(self):
        what = "an integer" if self.kind is int else "a number"
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.exclusive_minimum else '>='} {self.minimum}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum}")
        if self.below is not None:
            bounds.append(f"< {self.below}")
        return what + (f" {' and '.join(bounds)}" if bounds else "")

    def check(self, value):
        """``value`` if it is of this kind (an int also passes as a float) and in range."""
        ok = not isinstance(value, bool) and (
            isinstance(value, int) or (self.kind is float and isinstance(value, float))
        )
        if ok and self.kind is float:
            value = float(value)
            ok = math.isfinite(value)
        if ok and self.minimum is not None:
            ok = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        if ok and self.maximum is not None:
            ok = value <= self.maximum
        if ok and self.below is not None:
            ok = value < self.below
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {self._what()}, got {value!r}")
        return value


def count(minimum=1):
    """An integer option ``>= minimum``."""
    return Number(int, minimum)


def rate(minimum=0.0, maximum=None, **kwargs):
    """A finite float option in range (default ``>= 0``)."""
    return Number(float, minimum, maximum, **kwargs)


def flag(group, name, default, help_text):
    """A ``--name/--no-name`` boolean option; ``name`` ``a_b`` is spelled ``--a-b`` (``--a_b`` is also accepted)."""
    spellings = dict.fromkeys([f"--{name.replace('_', '-')}", f"--{name}"])
    group.add_argument(*spellings, dest=name, action=argparse.BooleanOptionalAction, default=default, help=help_text)


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are exceptions: :func:`ptl_ext.cli.main` prints them in one line."""

    def error(self, message):
        raise OptionError(f"{message} (see {self.prog} --help)")


def check_value(action, value):
    """A config-file ``value`` for ``action`` checked as the command line would check it; returns it.

    Raises ``argparse.ArgumentTypeError`` with what was expected.
    """
    if isinstance(action, argparse.BooleanOptionalAction):
        try:
            return _checks.boolean(value, action.dest)
        except TypeError:
            raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}") from None
    if isinstance(action.type, Number):
        value = action.type.check(value)
    elif action.type is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}")
    elif action.type is None and not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"expected a string, got {value!r}")
    if action.choices is not None and value not in action.choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(map(str, action.choices))}, got {value!r}")
    return value
