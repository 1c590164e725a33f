"""The demo's data: the synthetic target set and the cached pre-trained backbone, with weight digests."""

import os

from .cache import cached

DATA_VERSION = 1  # bump when the synthetic generator's output changes: cache entries are keyed by it
PRETRAIN_VERSION = 1  # likewise for the pre-training recipe


def target_dataset(args, cache_root):
    """The cached synthetic target set: ``(folder, reused)``."""
    from ..data import make_synthetic_market

    settings = {
        "version": DATA_VERSION,
        "domain": "target",
        "train_ids": args.train_ids,
        "test_ids": args.test_ids,
        "cams": 4,
        "images_per_cam": args.images_per_cam,
        "height": args.height,
        "width": args.width,
        "seed": args.seed,
    }

    def build(folder):
        make_synthetic_market(
            folder,
            num_train_ids=args.train_ids,
            num_test_ids=args.test_ids,
            num_cams=4,
            images_per_cam=args.images_per_cam,
            height=args.height,
            width=args.width,
            seed=args.seed,
        )

    return cached(cache_root, "target", settings, build)


def pretraining_settings(args):
    """Everything the cached pre-trained backbone depends on (its cache key)."""
    return {
        "version": PRETRAIN_VERSION,
        "data_version": DATA_VERSION,
        "arch": args.arch,
        "source_ids": args.source_ids,
        "source_test_ids": 8,
        "cams": 4,
        "images_per_cam": args.source_images_per_cam,
        "height": args.height,
        "width": args.width,
        "epochs": args.pretrain_epochs,
        "lr": args.pretrain_lr,
        "p": min(8, args.source_ids),
        "k": 4,
        "pad": 4,
        "erasing": 0.0,
        "last_stride": 2,
        "seed": args.seed,
    }


def pretrained_backbone(args, cache_root):
    """The cached pre-trained backbone (torchvision keys): ``(path, reused)``; trains it when absent."""
    from ..data import make_synthetic_market
    from ..runs.pretrain import pretrain_spec, run_pretrain

    settings = pretraining_settings(args)

    def build(folder):
        source = os.path.join(folder, "source")
        make_synthetic_market(
            source,
            num_train_ids=settings["source_ids"],
            num_test_ids=settings["source_test_ids"],
            num_cams=settings["cams"],
            images_per_cam=settings["images_per_cam"],
            height=settings["height"],
            width=settings["width"],
            seed=settings["seed"],
            domain="source",
        )
        run = os.path.join(folder, "run")
        path, _ = run_pretrain(
            pretrain_spec(
                root=source,
                arch=settings["arch"],
                out=run,
                epochs=settings["epochs"],
                lr=settings["lr"],
                height=settings["height"],
                width=settings["width"],
                p=settings["p"],
                k=settings["k"],
                pad=settings["pad"],
                erasing=settings["erasing"],
                last_stride=settings["last_stride"],
                seed=settings["seed"],
                workers=args.workers,
                device="cpu",
                progress=args.progress,
            )
        )
        os.replace(path, os.path.join(folder, "backbone.pth"))
        for name in ("last.pt", "best.pt"):
            if os.path.exists(os.path.join(run, name)):
                os.remove(os.path.join(run, name))

    folder, reused = cached(cache_root, "pretrained", settings, build)
    return os.path.join(folder, "backbone.pth"), reused


def stage_digest(stages):
    """SHA-256 of a backbone's stage weights (``nn.ModuleList`` state, BN statistics included)."""
    from ..train.checkpoint import content_digest

    return content_digest(stages.state_dict())


def pretrained_digest(arch, path):
    """:func:`stage_digest` of the backbone ``arch`` loaded from the torchvision-format ``path``."""
    from torch import nn

    from ..models import build_backbone

    return stage_digest(nn.ModuleList(build_backbone(arch, pretrained=path).stages()))


def snapshot_digest(snapshot):
    """:func:`stage_digest` of a rolling-back snapshot (``{"stages.i.key": tensor}``)."""
    from ..train.checkpoint import content_digest

    return content_digest({name[len("stages.") :]: value for name, value in snapshot.items()})
