"""The package's import graph: no import circle (function-local imports included), no module importing a
layer above its own, and ``ptl --help`` / ``ptl train --help`` light enough to import no compiled extension and
no network module."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ptl_ext")

# layer of each subpackage (and top-level module): a module may import its own layer and those below
LAYERS = {
    "_checks": 0,
    "_defaults": 0,
    "_io": 0,
    "_lazy": 0,
    "_signals": 0,  # SIGTERM as KeyboardInterrupt and the interruption message: standard library only
    "errors": 0,
    "_build_config": 0,
    "step_time": 0,  # the H200 step times of ptl_ext/h200_step_ms.toml: imports nothing of the package
    "_torch_kernels": 1,
    "reference": 1,
    "ops": 1,
    "nn": 2,
    "models": 3,
    "data": 1,
    "reid": 2,
    "train": 4,
    "deploy": 5,
    "info": 5,
    "runs": 5,
    "experiments": 6,
    "cli": 7,
    "__main__": 8,
    "__init__": 0,  # ptl_ext itself: lazy attributes only (its version, its subpackages on first use)
}


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(ROOT))[: -len(".py")].split(os.sep)
    return ".".join(rel[:-1] if rel[-1] == "__init__" else rel)


def _modules():
    found = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                found[_module_name(path)] = path
    return found


def import_graph():
    """``{module: {imported module of the package}}`` from every import statement (function-local ones too);
    ``from PKG import NAME`` counts NAME when it is a submodule, else PKG."""
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        is_package = path.endswith("__init__.py")
        package = module if is_package else module.rpartition(".")[0]
        with open(path) as fh:
            tree = ast.parse(fh.read(), path)
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
        graph[module] = {edge for edge in edges if edge in modules and edge != module}
    return graph


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module):
    parts = module.split(".")
    return LAYERS[parts[1] if len(parts) > 1 else "__init__"]


def test_the_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    assert "ptl_ext.runs.spec" in graph["ptl_ext.runs.resolve"]  # from .spec import RunSpec
    assert "ptl_ext.models._registry" in graph["ptl_ext.runs.resolve"]  # inside build_spec: from ..models._registry
    assert "ptl_ext.experiments.demo_stats" in graph["ptl_ext.experiments.demo"]  # from . import demo_stats
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle():
    assert cycles(import_graph()) == []


def test_no_module_imports_a_layer_above_its_own():
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


LOADED = """
import sys
from ptl_ext.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
light = ("ptl_ext.models._registry", "ptl_ext.nn.modes")  # the zoo's names and the cells' state modes
heavy = [m for m in sys.modules if m.startswith(("ptl_ext._C", "ptl_ext.ops", "ptl_ext.nn.", "ptl_ext.models."))]
print("HEAVY", sorted(m for m in heavy if m not in light), file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help_imports_no_compiled_extension_and_no_network(argv):
    """``ptl --help`` and ``ptl train --help`` read the networks' names from the registry's declarations, not
    from the networks' modules, and load no kernel (the compiled library or its fallbacks)."""
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(argv=argv)], capture_output=True, text=True, cwd=os.path.dirname(ROOT)
    )
    assert "usage: ptl" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "HEAVY []"
