"""Network names added for MGN and PTL-v2: ``mgn``, ``mgn_ptl``, ``ptl_v2_*``, and their argument checks."""

import warnings

import pytest

from ptl_ext.models import MGN, MGNPTL
from ptl_ext.nn import BConvCellV2
from ptl_ext.train.builders import ARCHS, BACKBONES, MGN_ARCHS, build_model

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")


def test_names():
    assert set(MGN_ARCHS) <= set(ARCHS)
    assert all(f"ptl_v2_{name}" in ARCHS for name in BACKBONES)


def test_ptl_v2_name_is_v2():
    model = build_model("ptl_v2_densenet_bc100", 10, (32, 32), head="cifar")
    assert all(isinstance(cell, BConvCellV2) for cell in model.cells)


def test_mgn_builds_and_checks():
    model = build_model("mgn_ptl", 7, (96, 32), v2=True)
    assert type(model) is MGNPTL and isinstance(model.cells[0], BConvCellV2) and model.head[0].out_features == 7
    assert type(build_model("mgn", 7, (96, 32), dropout=0)) is MGN
    with pytest.raises(ValueError, match="no 'cifar' head"):
        build_model("mgn", 10, (32, 32), head="cifar")
    with pytest.raises(ValueError, match="no dropout"):
        build_model("mgn_ptl", 10, (96, 32), dropout=0.5)
    with pytest.raises(ValueError, match="v2 applies"):
        build_model("mgn", 10, (96, 32), v2=True)
