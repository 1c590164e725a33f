"""``ptl eval``: evaluate a ``ptl train`` checkpoint on its dataset (or another)."""

from .report import format_table


def run_eval(args):
    """Evaluate ``args.checkpoint`` (see ``ptl eval --help``); returns the metrics dict."""
    from ..train import init_distributed, load_checkpoint
    from ..train.checkpoint import model_from_checkpoint
    from .run import build_data, select_device

    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, f"--checkpoint {args.checkpoint}")
    meta = state["meta"]
    args.dataset = args.dataset or meta["dataset"]
    args.root = args.root or meta["root"]
    device = select_device(args.device)
    info = init_distributed(device.type)
    _, evaluator, _, _ = build_data(args, info, meta["height"], meta["width"], train=False)
    evaluator.check()
    metrics = evaluator(model.to(device), device, args.amp, info)
    if info.is_main:
        print(format_table([(meta["arch"], meta.get("parameters"), metrics)]))
    return metrics
