"""The model zoo's registry: every network by name, with what the command line needs to know about it.

One naming scheme: ``NAME`` is the plain backbone, ``ptl_NAME`` its PTL network and ``ptl_v2_NAME``
its PTL-v2 network. Older spellings stay usable as aliases (see :data:`ALIASES`), and the old
``v2=True`` keyword turns ``ptl_NAME`` into ``ptl_v2_NAME``.
"""

import fnmatch
from dataclasses import dataclass, field

__all__ = [
    "ModelInfo",
    "ALIASES",
    "HEAD_NAMES",
    "register_model",
    "list_models",
    "is_model",
    "model_info",
    "resolve_model_name",
]

PTL_PREFIX = "ptl_"
PTL_V2_PREFIX = "ptl_v2_"

# old name -> current name
ALIASES = {"mgn_ptl": "ptl_mgn"}

# The zoo's networks, declared here (no torch) so that their names and input sizes are known before the
# networks' modules are imported (``ptl --help``); :mod:`ptl_ext.models._zoo` attaches their builders.
ZOO_BACKBONES = {
    "resnet34": "resnet",
    "resnet50": "resnet",
    "resnet101": "resnet",
    "densenet121": "densenet",
    "densenet161": "densenet",
    "densenet_bc100": "densenet",
    "mobilenet_v2": "mobilenet",
}
MGN_INPUT_SIZE = (384, 128)
# The networks' options, declared here (no torch) for the command line and the run description:
# heads (:data:`ptl_ext.models.heads.HEADS`), how a head's layers start (torch: PyTorch's own Linear
# initialisation; he: He et al. 2015, normal, fan-in, biases 0) and MGN's reductions (separate: one per piece,
# the MGN paper, 8 of them; shared: one for all 8 pieces, the public MGN reproduction
# github.com/GNAYUOHZ/ReID-MGN, which the PTL paper's MGN rows ran).
HEAD_NAMES = ("reid", "rolling_back", "cifar", "bnneck", "bnneck_pre")  # built by ptl_ext.models.heads.make_head
REID_HEADS = ("reid", "rolling_back", "bnneck", "bnneck_pre")
HEAD_INITS = ("torch", "he")
MGN_REDUCTIONS = ("separate", "shared")

_ENTRIES = {}


@dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one network name.

    ``name``: the registered name; ``base``: the name without its ``ptl_`` / ``ptl_v2_`` prefix;
    ``family``: ``"resnet"``, ``"densenet"``, ``"mobilenet"`` or ``"mgn"``; ``ptl`` / ``v2``: a PTL (PTL-v2)
    network;
    ``input_size``: the default training image size ``(H, W)`` (384×128 for MGN, 256×128 otherwise);
    ``build``: the builder :func:`~ptl_ext.models.create_model` calls.
    """

    name: str
    base: str
    family: str
    ptl: bool
    v2: bool
    input_size: tuple
    build: object = field(repr=False, compare=False)


def _split_name(name):
    """``(base, ptl, v2)`` of a name in the ``NAME`` / ``ptl_NAME`` / ``ptl_v2_NAME`` scheme."""
    if name.startswith(PTL_V2_PREFIX):
        return name[len(PTL_V2_PREFIX) :], True, True
    if name.startswith(PTL_PREFIX):
        return name[len(PTL_PREFIX) :], True, False
    return name, False, False


def register_model(name, *, family, input_size=(256, 128)):
    """Decorator registering ``build(num_classes, input_size, *, head, pretrained, last_stride, dropout)``
    under ``name``; whether the network is PTL / PTL-v2 is read from the name's prefix.

    Raises ``ValueError`` when ``name`` is registered already or is an alias (a network of the zoo declared
    here without its builder takes the builder, with the declared family and input size).
    """

    def register(build):
        base, ptl, v2 = _split_name(name)
        info = ModelInfo(name, base, family, ptl, v2, tuple(input_size), build)
        declared = _ENTRIES.get(name)
        if name in ALIASES or (declared is not None and (declared.build is not None or declared != info)):
            raise ValueError(f"register_model: {name!r} is registered already")
        _ENTRIES[name] = info
        return build

    return register


def _declare_zoo():
    """Enter the zoo's networks (:data:`ZOO_BACKBONES` plain, ``ptl_`` and ``ptl_v2_``, and MGN) without builders."""
    families = {**ZOO_BACKBONES, "mgn": "mgn"}
    for base, family in families.items():
        for prefix in ("", PTL_PREFIX, PTL_V2_PREFIX):
            name = prefix + base
            size = MGN_INPUT_SIZE if family == "mgn" else (256, 128)
            _ENTRIES[name] = ModelInfo(name, base, family, bool(prefix), prefix == PTL_V2_PREFIX, size, None)


_declare_zoo()


def list_models(pattern=None, *, exclude=(), aliases=False):
    """Sorted names of the registered networks: those matching the shell-style ``pattern`` (``"ptl_*"``)
    when given, without those matching a pattern of ``exclude`` (one pattern or several); ``aliases=True``
    adds the old names that still work.

    ``list_models(exclude=("ptl_*", "mgn"))`` lists the plain backbones.
    """
    names = list(_ENTRIES) + (list(ALIASES) if aliases else [])
    if pattern is not None:
        names = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    excluded = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    return sorted(name for name in names if not any(fnmatch.fnmatchcase(name, p) for p in excluded))


def is_model(name):
    """Whether ``name`` (or the alias ``name``) is a network of the zoo."""
    return name in _ENTRIES or name in ALIASES


def resolve_model_name(name, v2=False):
    """The registered name that ``name`` stands for: aliases resolved, ``v2=True`` moving a PTL name to
    its PTL-v2 version (``ptl_resnet50`` -> ``ptl_v2_resnet50``, ``mgn_ptl`` -> ``ptl_v2_mgn``).

    Raises ``ValueError`` for an unknown name (listing the known ones) and for ``v2`` on a network
    that is not a PTL network.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    if not isinstance(v2, bool):
        raise TypeError(f"v2 must be true or false, got {v2!r}")
    resolved = ALIASES.get(name, name)
    if resolved not in _ENTRIES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(list_models(aliases=True))}")
    info = _ENTRIES[resolved]
    if v2 and not info.ptl:
        raise ValueError(f"v2 applies to PTL networks (ptl_*), not to {name!r}")
    return PTL_V2_PREFIX + info.base if v2 else resolved


def model_info(name, v2=False):
    """The :class:`ModelInfo` of ``name`` (resolved by :func:`resolve_model_name`)."""
    return _ENTRIES[resolve_model_name(name, v2)]
