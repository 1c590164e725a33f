"""Pre-training a plain backbone on a (source) set and exporting it under torchvision's keys.

The backbone plays an ImageNet-trained network's part: it is trained from scratch to classify the
identities of the source set (cross-entropy over a single linear classifier, like an ImageNet
classifier; no triplet term, which stays a choice of the target's fine-tuning), then written as
``OUT/backbone.pth``, a plain state dict with torchvision's keys (``conv1.weight``, ``layer1.0...``,
``fc.weight``) that ``ptl train --pretrained`` loads into the backbone and into its PTL network. The
source's query/gallery split (held-out source identities) is evaluated after the last epoch, as a
check that the features learned something.
"""

import os

from .._defaults import default_of
from ..data.config import DataConfig
from ..train.config import TrainConfig

# What pre-training sets on the underlying training run (not options of pre-training).
FIXED = {"dataset": "market1501", "triplet_weight": 0.0, "dropout": 0.0, "save_every": 0, "eval_every": 0}


def pretrain_spec(
    root,
    arch="resnet50",
    out="runs/pretrain",
    epochs=30,
    lr=0.01,
    step_size=None,
    height=None,
    width=None,
    p=default_of(DataConfig, "p"),
    k=default_of(DataConfig, "k"),
    pad=default_of(DataConfig, "pad"),
    erasing=0.0,
    last_stride=2,
    seed=0,
    workers=default_of(DataConfig, "workers"),
    eval_batch_size=default_of(DataConfig, "eval_batch_size"),
    device=None,
    progress=default_of(TrainConfig, "progress"),
    overwrite=default_of(TrainConfig, "overwrite"),
):
    """The :class:`~ptl_ext.runs.RunSpec` of pre-training ``arch`` on the source set at ``root`` (the defaults
    are ``ptl pretrain``'s): ``step_size`` defaults to two thirds of ``epochs``, the input size to the network's."""
    from ..models._registry import model_info
    from .resolve import build_spec

    size = model_info(arch).input_size
    return build_spec(
        **FIXED,
        root=root,
        arch=arch,
        out=out,
        epochs=epochs,
        lr=lr,
        step_size=step_size or max(1, 2 * epochs // 3),
        height=height or size[0],
        width=width or size[1],
        overwrite=overwrite,
        p=p,
        k=k,
        pad=pad,
        erasing=erasing,
        last_stride=last_stride,
        seed=seed,
        workers=workers,
        eval_batch_size=eval_batch_size,
        progress=progress,
        device=device,
    )


def build_pretrain_model(arch, num_classes, size, last_stride=2):
    """``BackboneNet`` of ``arch`` with one linear classifier over ``num_classes`` (a torchvision-like net)."""
    from ..models import BackboneNet, build_backbone

    options = {"last_stride": last_stride} if arch.startswith("resnet") else {}
    return BackboneNet(
        build_backbone(arch, **options).stages(),
        num_classes,
        head="cifar",
        head_hidden=(),
        dropout=0.0,
        input_size=tuple(size),
    )


def run_pretrain(spec):
    """Pre-train as ``spec`` (see :func:`pretrain_spec`) says; returns ``(backbone path, trainer)``."""
    import torch

    from ..models import build_backbone, count_parameters, save_torchvision_backbone
    from ..train import DistInfo, Trainer
    from .data import build_data
    from .device import select_device
    from .model import build_loss
    from .report import format_table
    from .train import train_config

    arch, out = spec.model.arch, spec.train.out_dir
    device, info = select_device(spec.device), DistInfo()
    size = (spec.height, spec.width)
    train_loader, evaluator, num_classes, protocol = build_data(spec, info, *size)
    torch.manual_seed(spec.seed)
    model = build_pretrain_model(arch, num_classes, size, spec.model.last_stride)
    config = train_config(spec, f"pre-training {arch} on {spec.root}")
    meta = {
        "arch": arch,
        "num_classes": num_classes,
        "height": size[0],
        "width": size[1],
        "last_stride": spec.model.last_stride,
        "root": os.path.abspath(spec.root),
        "protocol": protocol,
        "parameters": count_parameters(model),
        "pretraining": True,
    }
    trainer = Trainer(
        model, train_loader, config, evaluator=evaluator, loss_fn=build_loss(spec), device=device, info=info, meta=meta
    )
    print(
        f"pre-training {arch} ({meta['parameters'] / 1e6:.2f} M parameters) to classify {num_classes} "
        f"source identities; run folder {out}",
        flush=True,
    )
    trainer.fit()
    path = os.path.join(out, "backbone.pth")
    save_torchvision_backbone(path, model.cpu(), build_backbone(arch))
    print(format_table([(f"{arch} (source test split)", meta["parameters"], trainer.history[-1])]))
    print(f"wrote {path} (torchvision keys): ptl train --pretrained {path} ...", flush=True)
    return path, trainer
