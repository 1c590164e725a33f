"""Reading a default from its home: a config dataclass's field or a callable's parameter."""

import dataclasses
import inspect


def default_of(home, name):
    """The default of field or parameter ``name`` of a dataclass or callable ``home``."""
    if dataclasses.is_dataclass(home):
        return {f.name: f.default for f in dataclasses.fields(home)}[name]
    return inspect.signature(home).parameters[name].default
