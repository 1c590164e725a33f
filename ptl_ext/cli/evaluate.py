"""``ptl eval``: evaluate a ``ptl train`` checkpoint on its dataset (or another); optionally draw ranked results."""

import os

from ..runs.report import format_table


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


def add_state_options(parser):
    """``ptl eval --eval-state``: the state the PTL cells start from at test time."""
    parser.add_argument(
        "--eval-state",
        choices=("zero", "train"),
        default="zero",
        help="PTL networks: evaluate from zero cell states (the papers) or, not in the papers, from the mean "
        "state the cells carry over one pass of the training split (default: %(default)s)",
    )


def run_eval(args):
    """Evaluate ``args.checkpoint`` (see ``ptl eval --help``) with
    :func:`ptl_ext.runs.evaluate.evaluate_checkpoint`; prints the table (and the pictures); returns the metrics."""
    from ..runs.evaluate import evaluate_checkpoint

    options = {key: value for key, value in vars(args).items() if key not in ("command", "debug", "paper")}
    result = evaluate_checkpoint(args.checkpoint, options, args.eval_state, ranked=bool(args.visualize))
    if result.info.is_main:
        print(format_table([(result.meta["arch"], result.meta.get("parameters"), result.metrics)]))
        if args.visualize:
            _visualize(args, result.evaluator, result.distmat)
    return result.metrics


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
