"""The package face: light imports that respect the layers, and lazy attributes that still work."""

import json
import subprocess
import sys

import pytest


def imported_after(statement):
    """The ``ptl_ext`` modules (and whether torch is) in ``sys.modules`` after ``statement``, in a fresh process."""
    code = (
        f"import sys, json\n{statement}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ptl_ext') or m == 'torch')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_ptl_ext_imports_no_layer():
    assert imported_after("import ptl_ext") == {"ptl_ext", "ptl_ext._lazy"}


def test_import_data_imports_only_its_registry():
    modules = imported_after("import ptl_ext.data")
    assert modules == {
        "ptl_ext",
        "ptl_ext._checks",
        "ptl_ext._lazy",
        "ptl_ext.data",
        "ptl_ext.data.config",
        "ptl_ext.data.registry",
    }  # not even torch
    modules = imported_after("import ptl_ext.data; ptl_ext.data.get_dataset('duke')")
    assert "torch" not in modules


@pytest.mark.parametrize(
    "statement",
    ["from ptl_ext.data import build_reid_loaders, make_synthetic_market, load_cifar", "import ptl_ext.reid"],
)
def test_data_and_reid_do_not_import_models(statement):
    modules = imported_after(statement)
    assert not any(m.startswith(("ptl_ext.models", "ptl_ext.train", "ptl_ext.nn")) for m in modules)
    if "data" in statement:
        assert not {"ptl_ext.ops", "ptl_ext._C", "ptl_ext.reference"} & modules
    else:
        assert not any(m.startswith("ptl_ext.data") for m in modules)


def test_models_do_not_import_data_reid_or_train():
    modules = imported_after("import ptl_ext.models")
    assert not any(m.startswith(("ptl_ext.data", "ptl_ext.reid", "ptl_ext.train")) for m in modules)


def test_lazy_attributes():
    import ptl_ext
    from ptl_ext import models

    assert ptl_ext.PTLResNet50 is models.PTLResNet50 and ptl_ext.PTLDenseNet161 is models.PTLDenseNet161
    for name in ("ops", "nn", "models", "reference", "data", "train", "reid"):
        module = getattr(ptl_ext, name)
        assert module.__name__ == f"ptl_ext.{name}" and sys.modules[module.__name__] is module
        assert name in dir(ptl_ext) and name in ptl_ext.__all__
    assert {"PTLResNet50", "PTLDenseNet161", "__version__"} <= set(dir(ptl_ext))
    with pytest.raises(AttributeError, match="module 'ptl_ext' has no attribute 'PTLResNet18'"):
        ptl_ext.PTLResNet18  # noqa: B018


def test_data_names_resolve_lazily():
    import ptl_ext.data as data
    from ptl_ext.data import loaders, transforms

    assert data.build_reid_loaders is loaders.build_reid_loaders and data.Compose is transforms.Compose
    assert set(data.__all__) <= set(dir(data)) and all(getattr(data, name) is not None for name in data.__all__)
    with pytest.raises(AttributeError, match="has no attribute 'load_imagenet'"):
        data.load_imagenet  # noqa: B018
