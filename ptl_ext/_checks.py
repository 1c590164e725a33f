"""Argument checks shared by every layer: each failure is a ``ValueError``/``TypeError`` naming the argument.

Validation happens once, where a value enters (a public function, a config dataclass, the CLI);
code behind that boundary trusts what it is given.
"""

import dataclasses
import math
import numbers
import os


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def integer(value, name, minimum=None, maximum=None):
    """``value`` as an ``int``, checked to be an integer (not a bool) in ``[minimum, maximum]``."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}, got {value!r}")
    return int(value)


def positive_int(value, name, minimum=1):
    """``value`` as an ``int``, checked to be an integer >= ``minimum`` (default 1)."""
    return integer(value, name, minimum=minimum)


def size_pair(value, name):
    """``value`` as a ``(H, W)`` tuple of two positive ints (a list is accepted)."""
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(_is_int(n) and n > 0 for n in value):
        raise ValueError(f"{name} must be a pair of positive ints (H, W), got {value!r}")
    return tuple(int(n) for n in value)


def real(value, name, minimum=None, maximum=None, *, exclusive_minimum=False, allow_none=False):
    """``value`` as a finite ``float`` in ``[minimum, maximum]`` (``(minimum, ...`` with ``exclusive_minimum``).

    Integers are accepted (``1`` is ``1.0``); bools, strings, NaN and infinities are not.
    ``allow_none`` lets ``None`` through unchanged.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if exclusive_minimum else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return value


def boolean(value, name):
    """``value`` if it is a ``bool`` (``"false"`` and ``0`` are refused, not read as truth values)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return value


def choice(value, name, choices):
    """``value`` if it is one of ``choices``, else a ``ValueError`` naming ``name`` and the choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


class Sealed:
    """Base of the config dataclasses that check (and normalise) their fields in ``__post_init__``: once that
    has run, the instance is read-only (assigning a field raises ``dataclasses.FrozenInstanceError``), as a
    frozen dataclass; ``dataclasses.replace`` makes a changed, checked copy."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        check = cls.__dict__.get("__post_init__")
        if check is not None:

            def __post_init__(self, *args):
                check(self, *args)
                object.__setattr__(self, "_sealed", True)

            __post_init__.__doc__ = check.__doc__
            cls.__post_init__ = __post_init__

    def __setattr__(self, name, value):
        if self.__dict__.get("_sealed"):
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r} of {type(self).__name__}")
        object.__setattr__(self, name, value)


MEMORY_LIMIT_ENV = "PTL_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def memory_limit():
    """Bytes a single request (a batch, a distance matrix, ...) may need: ``$PTL_MEMORY_LIMIT`` when set
    (bytes, or with a K/M/G/T suffix: ``64G``), else this machine's physical memory.

    A bad ``PTL_MEMORY_LIMIT`` raises ``ValueError`` naming it.
    """
    text = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if text:
        number, unit = (text[:-1], text[-1].upper()) if text[-1].upper() in _UNITS else (text, "")
        try:
            limit = float(number) * _UNITS[unit]
        except ValueError:
            limit = -1.0
        if not (math.isfinite(limit) and limit > 0):
            raise ValueError(f"{MEMORY_LIMIT_ENV} must be a size in bytes such as 8G or 500M, got {text!r}")
        return int(limit)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf: 1 TiB, a bound that still stops typos
        return 2**40


def _size(nbytes):
    for unit in ("T", "G", "M", "K"):
        if nbytes >= _UNITS[unit]:
            return f"{nbytes / _UNITS[unit]:.1f} {unit}iB"
    return f"{nbytes} bytes"


def allocation(nbytes, what):
    """Refuse a request of ``nbytes`` bytes (``what`` says what and from which options) above
    :func:`memory_limit`, before anything is allocated; returns ``nbytes``.

    Raises ``ValueError``: "``what`` would need N GiB, more than this machine's M GiB (set
    PTL_MEMORY_LIMIT to allow more)".
    """
    limit = memory_limit()
    if nbytes > limit:
        source = f"{MEMORY_LIMIT_ENV}" if os.environ.get(MEMORY_LIMIT_ENV, "").strip() else "this machine's memory"
        raise ValueError(
            f"{what} would need {_size(nbytes)}, more than the limit of {_size(limit)} ({source}; "
            f"set {MEMORY_LIMIT_ENV}=SIZE, e.g. 512G, to allow more)"
        )
    return nbytes
