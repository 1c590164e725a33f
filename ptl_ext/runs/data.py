"""The data of a run: loaders and the evaluator for ``spec.dataset`` at ``spec.root``."""

from ..errors import OptionError


def build_data(spec, info, height, width, train=True):
    """``(train_loader, evaluator, num_classes, protocol)`` of a :class:`~ptl_ext.runs.RunSpec`.

    ``train=False`` (evaluation only) builds no training loader (``None``).
    """
    from .. import data as D
    from ..train import ReIDEvaluator

    if spec.root is None:
        raise OptionError("--root is required: the dataset folder")
    if D.get_dataset(spec.dataset).task != "reid":
        return _cifar_data(spec, info, train)
    cfg = spec.data
    dataset = D.load_dataset(spec.dataset, spec.root)
    query, gallery = D.build_reid_eval_loaders(
        dataset, height, width, cfg.eval_batch_size, cfg.workers, info.rank, info.world_size
    )
    evaluator = ReIDEvaluator(
        query,
        gallery,
        metric=spec.evaluation.metric,
        rerank=spec.evaluation.rerank,
        flip=spec.evaluation.flip,
        normalize=spec.evaluation.normalize,
        protocol=dataset.protocol,
        k1=spec.rerank.k1,
        k2=spec.rerank.k2,
        lambda_value=spec.rerank.lambda_value,
        aqe_k=spec.aqe.k,
        aqe_alpha=spec.aqe.alpha,
    )
    train_loader = None
    if train:
        train_loader = D.build_reid_train_loader(
            dataset,
            height,
            width,
            cfg.p,
            cfg.k,
            cfg.workers,
            spec.seed,
            info.rank,
            info.world_size,
            cfg.erasing,
            cfg.pad,
            sampler=cfg.sampler,
            batch_size=cfg.batch_size,
        )
    return train_loader, evaluator, dataset.num_train_pids, dataset.protocol


def _cifar_data(spec, info, train):
    """:func:`build_data` for CIFAR-10/100."""
    import torch

    from .. import data as D
    from ..train import ClassificationEvaluator

    cfg = spec.data
    classes = D.get_dataset(spec.dataset).num_classes
    test_images, test_labels = D.load_dataset(spec.dataset, spec.root, train=False)
    test_set = D.TensorImageDataset(test_images, test_labels, D.build_cifar_transforms(False))
    test_loader = D.build_dataloader(
        test_set,
        batch_size=cfg.eval_batch_size,
        num_workers=cfg.workers,
        sampler=D.ShardSampler(len(test_set), info.rank, info.world_size),
    )
    train_loader = None
    if train:
        images, labels = D.load_dataset(spec.dataset, spec.root, train=True)
        train_set = D.TensorImageDataset(images, labels, D.build_cifar_transforms(True, cfg.augment))
        sampler = None
        if info.distributed:
            sampler = torch.utils.data.DistributedSampler(
                train_set, info.world_size, info.rank, shuffle=True, seed=spec.seed
            )
        train_loader = D.build_dataloader(
            train_set,
            batch_size=cfg.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            drop_last=True,
            num_workers=cfg.workers,
            seed=spec.seed + info.rank,
        )
    return train_loader, ClassificationEvaluator(test_loader), classes, "classification"
