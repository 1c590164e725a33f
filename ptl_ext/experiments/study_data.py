"""The data and networks of ``ptl study``: one seed's Fashion-MNIST protocol as a training loader and its
evaluators, a row's network, the rolling-back / base_cy method, and the check that the weights are real."""

from .study_config import check_inputs

__all__ = ["Retrieval", "build_data", "build_network", "restarts", "knn_check"]


class Retrieval:
    """``(image, label, camera)`` items of in-memory images: the ReID evaluator's batches (queries on camera 0,
    gallery on camera 1, so that no gallery image is excluded from a query's ranking)."""

    def __init__(self, images, labels, camera, transform):
        self.images, self.labels, self.camera, self.transform = images, labels, camera, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.transform(self.images[index]), int(self.labels[index]), self.camera


def build_data(config, root, seed):
    """``(train loader, evaluator, reranking evaluator, accuracy evaluator or None, classes)`` of one seed."""
    from ..data import TensorImageDataset, build_dataloader, build_reid_transforms
    from ..data.fashion_mnist import fashion_mnist_protocol
    from ..train import ClassificationEvaluator, ReIDEvaluator

    split = fashion_mnist_protocol(
        config.protocol,
        root,
        train_per_class=config.train_per_class,
        query_per_class=config.query_per_class,
        gallery_per_class=config.gallery_per_class,
        evaluate_on=config.evaluate_on,
    )
    size = config.size
    train_tf = build_reid_transforms(size, size, True, padding=config.pad, erasing_p=config.erasing)
    test_tf = build_reid_transforms(size, size, False)
    train = build_dataloader(
        TensorImageDataset(*split.train, train_tf),
        config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=config.workers,
        seed=seed,
    )

    def loader(dataset):
        return build_dataloader(dataset, 256, num_workers=config.workers, seed=seed)

    query, gallery = loader(Retrieval(*split.query, 0, test_tf)), loader(Retrieval(*split.gallery, 1, test_tf))
    evaluator = ReIDEvaluator(query, gallery, normalize=True)
    reranked = ReIDEvaluator(query, gallery, normalize=True, rerank=True) if config.rerank else None
    accuracy = None
    if split.test is not None:
        accuracy = ClassificationEvaluator(loader(TensorImageDataset(*split.test, test_tf)))
    return train, evaluator, reranked, accuracy, split.num_classes


def build_network(config, row, classes, weights):
    """The network of ``row`` (PTL MobileNetV2 for ``ptl``, else MobileNetV2) for ``classes`` classes at
    ``config.size`` × ``config.size``, its trunk loaded from ``weights``."""
    from ..models import create_model

    arch = "ptl_mobilenet_v2" if row == "ptl" else "mobilenet_v2"
    size = (config.size, config.size)
    return create_model(arch, classes, size, head=config.head, pretrained=weights, last_stride=config.last_stride)


def restarts(config, model, rolled_back, lr):
    """The rolling-back method, or (``rolled_back=False``) its base_cy control: the same periods and the same
    fresh optimisers at each period's start, without restoring any weights (``RollbackSchedule.restore``);
    ``lr``: the row's learning rate."""
    from ..train import RollbackSchedule, RollingBack

    schedule = RollbackSchedule(
        periods=config.periods,
        epochs_per_period=config.epochs,
        decay_epoch=config.decay_epoch,
        lr=lr,
        first_head_lr=lr if config.head_lr is None else config.head_lr,
        kept_lr=lr * config.kept_lr_factor,
        gamma=config.gamma,
        restore=rolled_back,
    )
    return RollingBack(model, schedule)


def knn_check(config, train_per_class=200, query_per_class=100, seed=0):
    """Whether the weights are real: 1-nearest-neighbour accuracy (cosine, pooled trunk features at
    ``config.size``) of Fashion-MNIST test queries against training images, with the pre-trained trunk and
    with a randomly initialised one (torch seed ``seed``). Returns ``{"pretrained": acc, "random": acc}``
    (fractions)."""
    import torch
    import torch.nn.functional as F

    from ..data import build_reid_transforms
    from ..data.fashion_mnist import fashion_mnist_protocol
    from ..models import mobilenet_v2

    weights, root = check_inputs(config)
    split = fashion_mnist_protocol(
        "closed", root, train_per_class=train_per_class, query_per_class=query_per_class, gallery_per_class=1
    )
    transform = build_reid_transforms(config.size, config.size, False)

    @torch.no_grad()
    def features(model, images):
        return torch.cat(
            [
                F.normalize(model.features(torch.stack([transform(im) for im in images[i : i + 256]])).mean((2, 3)))
                for i in range(0, len(images), 256)
            ]
        )

    out = {}
    for name in ("pretrained", "random"):
        torch.manual_seed(seed)
        model = mobilenet_v2(pretrained=weights if name == "pretrained" else None, last_stride=2).eval()
        gallery, queries = features(model, split.train[0]), features(model, split.query[0])
        predicted = split.train[1][(queries @ gallery.t()).argmax(1)]
        out[name] = float((predicted == split.query[1]).float().mean())
    return out
