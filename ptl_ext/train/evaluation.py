"""Evaluators the trainer calls: ReID retrieval (through ``ptl_ext.reid``) and classification error.

An evaluator is called as ``evaluator(model, device, amp, info)`` on every rank and returns the
same dict of floats on every rank; ``primary`` names the metric that selects the best checkpoint
and ``higher_is_better`` its direction.
"""

import contextlib

import torch

from .. import _checks
from ..errors import DataError, DivergenceError
from ..reid.config import EvalConfig
from .distributed import DistInfo, all_reduce_mean, broadcast_object, gather_interleaved


def autocast(device, enabled):
    """``torch.autocast`` for ``device`` (bfloat16 on CPU, float16 on CUDA) or a no-op."""
    if not enabled:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.float16 if device_type == "cuda" else torch.bfloat16)


@torch.no_grad()
def extract_features(model, loader, device="cpu", flip=True, amp=False, info=DistInfo()):
    """Eval-mode features of every image of ``loader`` (batches ``(images, pids, camids)``).

    With ``flip`` a feature is the sum of the image's and its mirror's features. Under DDP each
    rank reads its :class:`ptl_ext.data.ShardSampler` shard and the results are gathered in order.

    Returns:
        ``(features float32 [N, D], pids int64 [N], camids int64 [N])`` on ``device``.
    """
    was_training = model.training
    model.eval()
    feats, pids, camids = [], [], []
    try:
        for images, pid, camid in loader:
            images = images.to(device, non_blocking=True)
            with autocast(device, amp):
                feature = model(images).float()
                if flip:
                    feature = feature + model(images.flip(-1)).float()
            feats.append(feature)
            pids.append(torch.as_tensor(pid, device=feature.device))
            camids.append(torch.as_tensor(camid, device=feature.device))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("extract_features: the loader yielded no batches")
    gathered = tuple(gather_interleaved(torch.cat(t), info) for t in (feats, pids, camids))
    bad = int((~torch.isfinite(gathered[0]).all(1)).sum())  # after the gather: every rank raises alike
    if bad:  # said here, where the cause is known, not as a complaint about qf or gf further on
        raise DivergenceError(
            f"extract_features: the network's features are NaN or infinite for {bad} of {gathered[0].shape[0]} "
            "images: its weights have diverged (lower the learning rate, or turn off mixed precision)"
        )
    return gathered


class ReIDEvaluator:
    """mAP / CMC / mINP of query against gallery with :func:`ptl_ext.reid.evaluate_features`.

    Args:
        query_loader, gallery_loader: loaders of ``(images, pids, camids)`` (sharded under DDP).
        metric: ``"euclidean"`` (squared) or ``"cosine"``.
        rerank: k-reciprocal re-ranking (euclidean only): a bool or a :class:`ptl_ext.reid.RerankConfig`;
            with ``True``, ``k1``, ``k2``, ``lambda_value`` replace its defaults.
        flip: flip features; normalize: L2-normalise features before the distance (default:
            :class:`ptl_ext.reid.EvalConfig`'s, the library's one default).
        protocol: ``"market"`` (also CUHK03-NP, MSMT17) or ``"cuhk03"``.
        aqe_k, aqe_alpha: alpha query expansion before ranking (``aqe_k`` neighbours, 0: off; weights
            ``cos ** aqe_alpha``; ``None``: the :class:`ptl_ext.reid.AQEConfig` defaults); see :func:`ptl_ext.reid.aqe`.
    Every option is checked here, so a bad one fails when the evaluator is made, before training.
    Returns (call): ``{"mAP", "mINP", "rank1", "rank5", "rank10", "num_valid"}``; all but
    ``num_valid`` (the number of queries with a match) are fractions in [0, 1].
    """

    primary = "mAP"
    higher_is_better = True

    def __init__(
        self,
        query_loader,
        gallery_loader,
        metric="euclidean",
        rerank=False,
        flip=True,
        normalize=EvalConfig.normalize,
        protocol="market",
        k1=None,
        k2=None,
        lambda_value=None,
        aqe_k=None,
        aqe_alpha=None,
    ):
        from .. import reid

        self.metric = _checks.choice(metric, "metric", reid.METRICS)
        self.rerank = reid.rerank_config(rerank, k1, k2, lambda_value)
        if self.rerank is not None and metric != "euclidean":
            raise ValueError(
                "ReIDEvaluator: rerank needs metric='euclidean' (normalize=True gives cosine-like ranking)"
            )
        defaults = reid.AQEConfig()
        self.aqe = reid.AQEConfig(
            defaults.k if aqe_k is None else aqe_k, defaults.alpha if aqe_alpha is None else aqe_alpha
        )
        self.query_loader, self.gallery_loader = query_loader, gallery_loader
        self.flip, self.normalize = _checks.boolean(flip, "flip"), _checks.boolean(normalize, "normalize")
        self.protocol = _checks.choice(protocol, "protocol", reid.PROTOCOLS)

    def check(self, decode=False):
        """Start-up check of what can fail before any network exists; returns the number of valid queries.

        Both splits must be non-empty and every image file readable (its header; fully decoded with
        ``decode``), and at least one query must have a valid match: a gallery image of its identity seen
        by another camera. Splits given as loaders over datasets with ``items`` ``(path, pid, camid)``
        (:class:`ptl_ext.data.ImageDataset`, whose ``check_files`` reads the files) are checked in full; other
        datasets only for being non-empty.

        Raises:
            ptl_ext.errors.DataError: an empty split, unreadable images (``ImageDecodeError``,
                ``ImageNotFoundError``) or no valid query.
        """
        items = {}
        for split, loader in (("query", self.query_loader), ("gallery", self.gallery_loader)):
            dataset = getattr(loader, "dataset", None)
            if hasattr(dataset, "__len__") and len(dataset) == 0:
                raise DataError(f"ReIDEvaluator: the {split} split is empty")
            if isinstance(getattr(dataset, "items", None), list):
                if callable(getattr(dataset, "check_files", None)):
                    dataset.check_files(f"the {split} split", decode)
                items[split] = dataset.items
        if len(items) < 2:
            return None
        cameras = {}
        for _, pid, cam in items["gallery"]:
            cameras.setdefault(pid, set()).add(cam)
        valid = sum(1 for _, pid, cam in items["query"] if cameras.get(pid, set()) - {cam})
        if valid == 0:
            raise DataError(
                f"ReIDEvaluator: no query has a valid match (none of the {len(items['query'])} query "
                "identities is in the gallery under another camera): check the query and gallery folders"
            )
        return valid

    def features(self, model, device="cpu", amp=False, info=DistInfo()):
        """``(qf, q_pids, q_camids, gf, g_pids, g_camids)`` of the query and gallery splits (gathered on rank 0)."""
        qf, q_pids, q_cams = extract_features(model, self.query_loader, device, self.flip, amp, info)
        gf, g_pids, g_cams = extract_features(model, self.gallery_loader, device, self.flip, amp, info)
        return qf, q_pids, q_cams, gf, g_pids, g_cams

    def distances(self, qf, gf):
        """The ``[Q, G]`` distances this evaluator ranks (metric, normalisation, AQE, re-ranking)."""
        from .. import reid

        return reid.retrieval_distances(
            qf,
            gf,
            metric=self.metric,
            rerank=self.rerank or False,
            normalize=self.normalize,
            aqe_k=self.aqe.k,
            aqe_alpha=self.aqe.alpha,
        )

    def __call__(self, model, device="cpu", amp=False, info=DistInfo()):
        return self.score(self.features(model, device, amp, info), info=info)

    def score(self, features, distmat=None, info=DistInfo()):
        """The metrics dict of :meth:`features`' output (on every rank; computed on rank 0).

        ``distmat``: the ``[Q, G]`` matrix of :meth:`distances` when the caller already holds it (it is then
        ranked as is instead of being computed again by blocks).
        """
        from .. import reid

        metrics = None
        if info.is_main:
            qf, q_pids, q_cams, gf, g_pids, g_cams = features
            if distmat is None:
                result = reid.evaluate_features(
                    qf,
                    gf,
                    q_pids,
                    g_pids,
                    q_cams,
                    g_cams,
                    metric=self.metric,
                    rerank=self.rerank or False,
                    normalize=self.normalize,
                    protocol=self.protocol,
                    aqe_k=self.aqe.k,
                    aqe_alpha=self.aqe.alpha,
                )
            else:
                result = reid.evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, protocol=self.protocol)
            cmc = [float(v) for v in result.cmc]
            metrics = {"mAP": float(result.mAP), "mINP": float(result.mINP), "num_valid": float(result.num_valid)}
            for rank in (1, 5, 10):
                metrics[f"rank{rank}"] = cmc[min(rank, len(cmc)) - 1]
        return broadcast_object(metrics, info)


class ClassificationEvaluator:
    """Top-1 error (fraction) of a classifier over a loader of ``(images, labels)``."""

    primary = "top1_error"
    higher_is_better = False

    def __init__(self, loader):
        self.loader = loader

    def check(self):
        """Start-up check: the test set is not empty (raises :class:`ptl_ext.errors.DataError`)."""
        dataset = getattr(self.loader, "dataset", None)
        if hasattr(dataset, "__len__") and len(dataset) == 0:
            raise DataError("ClassificationEvaluator: the test set is empty")

    @torch.no_grad()
    def __call__(self, model, device="cpu", amp=False, info=DistInfo()):
        was_training = model.training
        model.eval()
        correct = total = 0
        try:
            for images, labels in self.loader:
                images, labels = images.to(device, non_blocking=True), labels.to(device)
                with autocast(device, amp):
                    logits, _ = model(images, return_features=True)
                correct += int((logits.argmax(1) == labels).sum())
                total += labels.numel()
        finally:
            model.train(was_training)
        sums = all_reduce_mean({"correct": correct, "total": total}, info)
        if sums["total"] == 0:
            raise ValueError("ClassificationEvaluator: the loader yielded no samples")
        return {"top1_error": 1.0 - sums["correct"] / sums["total"]}
