"""Evaluating a checkpoint (``ptl eval``): its network on its dataset (or another), from a zero cell state
or, not in the papers, from the state the cells carry over the training split."""

from dataclasses import dataclass

from ..errors import OptionError

# The training-loader settings ``--eval-state train`` takes from the checkpoint (recorded by ``ptl train``).
TRAIN_LOADER_KEYS = ("p", "k", "seed", "erasing", "pad", "batch_size", "augment")


def train_state_settings(meta, info):
    """Check ``--eval-state train`` against the checkpoint; returns its training-loader settings."""
    from ..models._registry import model_info

    if not model_info(meta["arch"], meta.get("v2", False)).ptl:
        raise OptionError(f"--eval-state train: only for PTL networks; the checkpoint holds {meta['arch']}")
    if meta.get("cell_state", "carry") != "carry":
        raise OptionError(
            f"--eval-state train: the checkpoint was trained with --cell-state {meta['cell_state']}, so its cells "
            "never started a batch from a carried state; there is no training state to evaluate from"
        )
    if info.world_size > 1:
        raise OptionError("--eval-state train: run ptl eval in one process (the state is averaged over every batch)")
    missing = [key for key in TRAIN_LOADER_KEYS if key not in meta]
    if missing:
        raise OptionError(
            f"--eval-state train: the checkpoint does not record {', '.join(missing)} (an older ptl train?)"
        )
    # checkpoints written before --sampler drew P x K batches
    return {**{key: meta[key] for key in TRAIN_LOADER_KEYS}, "sampler": meta.get("sampler", "pk")}


def eval_spec(options, meta, loader_settings):
    """The :class:`~ptl_ext.runs.RunSpec` of an evaluation: ``options`` (option names: the evaluation's, the
    dataset and root, default the checkpoint's) and, for the training state, the checkpoint's training-loader
    settings."""
    from .spec import RunSpec

    names = RunSpec().options()
    given = {key: value for key, value in options.items() if key in names}
    given.update(
        dataset=options.get("dataset") or meta["dataset"], root=options.get("root") or meta["root"], **loader_settings
    )
    return RunSpec.from_options(given)


@dataclass
class Evaluation:
    """What :func:`evaluate_checkpoint` found: ``metrics``, the checkpoint's ``meta``, the ``evaluator``, the
    query x gallery ``distmat`` (with ``ranked``, on rank 0; else ``None``) and the process ``info``."""

    metrics: dict
    meta: dict
    evaluator: object
    distmat: object
    info: object


def evaluate_checkpoint(checkpoint, options, eval_state="zero", ranked=False):
    """Evaluate ``checkpoint`` with ``options`` (the evaluation's option names, e.g. ``metric``, ``rerank``,
    ``device``, ``workers``); ``eval_state="train"`` starts the cells from their mean state over the training
    split; ``ranked`` also keeps the distance matrix (for ranked-result pictures). Returns an :class:`Evaluation`.
    """
    from ..data import get_dataset
    from ..nn import accumulate_eval_states
    from ..train import init_distributed, load_checkpoint
    from ..train.checkpoint import check_dataset_fits, model_from_checkpoint
    from .data import build_data
    from .device import select_device

    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state, f"--checkpoint {checkpoint}")
    meta = state["meta"]
    device = select_device(options.get("device"))
    info = init_distributed(device.type)
    train_state = eval_state == "train"
    spec = eval_spec(options, meta, train_state_settings(meta, info) if train_state else {})
    check_dataset_fits(meta, get_dataset(spec.dataset), f"--checkpoint {checkpoint}")
    train_loader, evaluator, _, _ = build_data(spec, info, meta["height"], meta["width"], train=train_state)
    evaluator.check()
    if ranked and not hasattr(evaluator, "distances"):
        raise OptionError(f"--visualize draws ranked ReID results; {spec.dataset} is a classification dataset")
    model = model.to(device)
    if train_state:
        accumulate_eval_states(model, (batch[0].to(device) for batch in train_loader))
        print(
            f"eval state: the mean state of the cells over the training split of {spec.root} "
            "(not in the papers, which evaluate from zeros)"
        )
    amp, distmat = spec.train.amp, None
    if not ranked:
        metrics = evaluator(model, device, amp, info)
    else:  # features and distances computed once, for the metrics and the pictures
        features = evaluator.features(model, device, amp, info)
        distmat = evaluator.distances(features[0], features[3]) if info.is_main else None
        metrics = evaluator.score(features, distmat, info)
    return Evaluation(metrics, meta, evaluator, distmat, info)
