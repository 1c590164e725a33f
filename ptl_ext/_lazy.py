"""Lazy package attributes (PEP 562): a public name is imported from its submodule on first use."""

import importlib
import sys


def lazy_attributes(package, exports):
    """``(__getattr__, __dir__)`` for ``package`` whose names live in submodules, imported when first read.

    ``exports`` maps each public name to its submodule relative to ``package``; a name equal to its
    submodule (``"ops": "ops"``) is the submodule itself. A resolved name is cached in the package, so
    the submodule is looked up once.
    """

    def __getattr__(name):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(f"{package}.{exports[name]}")
        value = module if name == exports[name] else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
