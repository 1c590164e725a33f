"""``ptl eval``: evaluate a ``ptl train`` checkpoint on its dataset (or another); optionally draw ranked results."""

import os

from .report import format_table


def add_visualize_options(parser):
    """``ptl eval --visualize K``: pictures of ranked results."""
    from ..deploy.visualize import SELECTIONS
    from .option_types import count

    group = parser.add_argument_group("ranked-result pictures")
    group.add_argument(
        "--visualize",
        type=count(0),
        default=0,
        metavar="K",
        help="draw each chosen query with its top-K gallery images (0 = off)",
    )
    group.add_argument("--vis-out", default=None, help="folder of the PNGs and index.html (default: CKPT_DIR/ranked)")
    group.add_argument("--vis-queries", type=count(), default=20, help="queries drawn (default: %(default)s)")
    group.add_argument(
        "--vis-select",
        choices=SELECTIONS,
        default="first",
        help="which queries: the first, a random sample or the worst by AP (default: %(default)s)",
    )
    group.add_argument("--vis-seed", type=count(0), default=0, help="seed of the random sample (default: 0)")


# The training-loader settings ``--eval-state train`` takes from the checkpoint (recorded by ``ptl train``).
TRAIN_LOADER_KEYS = ("p", "k", "seed", "erasing", "pad", "batch_size", "augment")


def add_state_options(parser):
    """``ptl eval --eval-state``: the state the PTL cells start from at test time."""
    parser.add_argument(
        "--eval-state",
        choices=("zero", "train"),
        default="zero",
        help="PTL networks: evaluate from zero cell states (the papers) or, not in the papers, from the mean "
        "state the cells carry over one pass of the training split (default: %(default)s)",
    )


def _train_state_settings(args, meta, info):
    """Check ``--eval-state train`` against the checkpoint and copy its training-loader settings to ``args``."""
    from ..models import model_info
    from .options import OptionError

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
    for key in TRAIN_LOADER_KEYS:
        setattr(args, key, meta[key])


def run_eval(args):
    """Evaluate ``args.checkpoint`` (see ``ptl eval --help``); returns the metrics dict."""
    from ..data import get_dataset
    from ..nn import accumulate_eval_states
    from ..train import init_distributed, load_checkpoint
    from ..train.checkpoint import check_dataset_fits, model_from_checkpoint
    from .dataset import build_data
    from .run import select_device

    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, f"--checkpoint {args.checkpoint}")
    meta = state["meta"]
    args.dataset = args.dataset or meta["dataset"]
    check_dataset_fits(meta, get_dataset(args.dataset), f"--checkpoint {args.checkpoint}")
    args.root = args.root or meta["root"]
    device = select_device(args.device)
    info = init_distributed(device.type)
    train_state = args.eval_state == "train"
    if train_state:
        _train_state_settings(args, meta, info)
    train_loader, evaluator, _, _ = build_data(args, info, meta["height"], meta["width"], train=train_state)
    evaluator.check()
    if args.visualize and not hasattr(evaluator, "distances"):
        from .options import OptionError

        raise OptionError(f"--visualize draws ranked ReID results; {args.dataset} is a classification dataset")
    model = model.to(device)
    if train_state:
        accumulate_eval_states(model, (batch[0].to(device) for batch in train_loader))
        print(
            f"eval state: the mean state of the cells over the training split of {args.root} "
            "(not in the papers, which evaluate from zeros)"
        )
    if not args.visualize:
        metrics = evaluator(model, device, args.amp, info)
    else:  # features and distances computed once, for the metrics and the pictures
        features = evaluator.features(model, device, args.amp, info)
        distmat = evaluator.distances(features[0], features[3]) if info.is_main else None
        metrics = evaluator.score(features, distmat, info)
    if info.is_main:
        print(format_table([(meta["arch"], meta.get("parameters"), metrics)]))
        if args.visualize:
            _visualize(args, evaluator, distmat)
    return metrics


def _visualize(args, evaluator, distmat):
    """Write the ranked-result PNGs and index.html of ``--visualize`` from the evaluator's distances."""
    from ..deploy import write_ranked_items

    out = args.vis_out or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "ranked")
    drawn = write_ranked_items(
        distmat,
        evaluator.query_loader.dataset.items,
        evaluator.gallery_loader.dataset.items,
        out,
        topk=args.visualize,
        num_queries=args.vis_queries,
        select=args.vis_select,
        seed=args.vis_seed,
    )
    print(f"ranked results of {len(drawn)} queries: {os.path.join(out, 'index.html')}")
