"""Runs: a :class:`RunSpec` (the frozen description of a training run) turned into data, network, loss,
methods and a :class:`~ptl_ext.train.Trainer`, and run (``train``, ``chain``, ``pretrain``).

Sits on ``train``, ``models``, ``data`` and ``reid``; used by ``ptl_ext.experiments`` and the ``ptl`` command
line, never imports them. Build a spec with :func:`build_spec` (defaults that depend on the network filled in,
options checked against each other), e.g. ``run_train(build_spec(root="data/market", arch="resnet50"))``.
"""

from .._lazy import lazy_attributes

_EXPORTS = {
    "RunSpec": "spec",
    "ModelOptions": "spec",
    "LossOptions": "spec",
    "MethodOptions": "spec",
    "EvalOptions": "spec",
    "build_spec": "resolve",
    "run_train": "train",
    "build_trainer": "train",
    "run_chain": "chain",
    "parse_chain": "chain",
    "pretrain_spec": "pretrain",
    "run_pretrain": "pretrain",
    "select_device": "device",
    "build_data": "data",
    "build_model": "model",
    "build_loss": "model",
}

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
del lazy_attributes

__all__ = list(_EXPORTS)
