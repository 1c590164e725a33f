"""The data of a ``ptl train`` / ``ptl eval`` run: loaders and the evaluator for the dataset at ``--root``."""

from .options import OptionError


def build_data(args, info, height, width, train=True):
    """``(train_loader, evaluator, num_classes, protocol)`` for ``args.dataset`` at ``args.root``.

    ``train=False`` (evaluation only) builds no training loader (``None``).
    """
    from .. import data as D
    from ..train import ReIDEvaluator

    if args.root is None:
        raise OptionError("--root is required: the dataset folder")
    if D.get_dataset(args.dataset).task == "reid":
        dataset = D.load_dataset(args.dataset, args.root)
        query, gallery = D.build_reid_eval_loaders(
            dataset, height, width, args.eval_batch_size, args.workers, info.rank, info.world_size
        )
        evaluator = ReIDEvaluator(
            query,
            gallery,
            metric=args.metric,
            rerank=args.rerank,
            flip=args.flip,
            normalize=args.normalize,
            protocol=dataset.protocol,
            k1=args.k1,
            k2=args.k2,
            lambda_value=args.lambda_value,
            aqe_k=args.aqe_k,
            aqe_alpha=args.aqe_alpha,
        )
        train_loader = None
        if train:
            train_loader = D.build_reid_train_loader(
                dataset,
                height,
                width,
                args.p,
                args.k,
                args.workers,
                args.seed,
                info.rank,
                info.world_size,
                args.erasing,
                args.pad,
                sampler=args.sampler,
                batch_size=args.batch_size,
            )
        return train_loader, evaluator, dataset.num_train_pids, dataset.protocol
    return _cifar_data(args, info, train)


def _cifar_data(args, info, train):
    """:func:`build_data` for CIFAR-10/100."""
    import torch

    from .. import data as D
    from ..train import ClassificationEvaluator

    classes = D.get_dataset(args.dataset).num_classes
    test_images, test_labels = D.load_dataset(args.dataset, args.root, train=False)
    test_set = D.TensorImageDataset(test_images, test_labels, D.build_cifar_transforms(False))
    test_loader = D.build_dataloader(
        test_set,
        batch_size=args.eval_batch_size,
        num_workers=args.workers,
        sampler=D.ShardSampler(len(test_set), info.rank, info.world_size),
    )
    train_loader = None
    if train:
        images, labels = D.load_dataset(args.dataset, args.root, train=True)
        train_set = D.TensorImageDataset(images, labels, D.build_cifar_transforms(True, args.augment))
        sampler = None
        if info.distributed:
            sampler = torch.utils.data.DistributedSampler(
                train_set, info.world_size, info.rank, shuffle=True, seed=args.seed
            )
        train_loader = D.build_dataloader(
            train_set,
            batch_size=args.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            drop_last=True,
            num_workers=args.workers,
            seed=args.seed + info.rank,
        )
    return train_loader, ClassificationEvaluator(test_loader), classes, "classification"
