"""The ``ptl`` argument parser: one subparser per command, option defaults read from their homes.

Every default shown here lives in a config dataclass or a signature of the library
(:class:`~ptl_ext.train.TrainConfig`, :class:`~ptl_ext.data.config.DataConfig`,
:class:`~ptl_ext.train.RollbackSchedule`, the losses, the evaluator); options whose default depends
on the network (input size, P, triplet terms for MGN) default to ``None`` and are filled in by
:func:`ptl_ext.cli.options.resolve_train_options`. The type callables check ranges, so a value from
the command line and the same value from a config file pass the same test.
"""

from .option_types import Parser, count, default_of, flag, rate


def add_eval_options(parser):
    """Options shared by ``train`` and ``eval``: distance, re-ranking, flip, normalisation, device."""
    from .. import reid
    from ..data.config import DataConfig
    from ..train.evaluation import ReIDEvaluator

    group = parser.add_argument_group("evaluation")
    group.add_argument(
        "--metric",
        choices=reid.METRICS,
        default=default_of(ReIDEvaluator, "metric"),
        help="feature distance for retrieval: euclidean (squared) or cosine (default: %(default)s)",
    )
    flag(group, "rerank", default_of(ReIDEvaluator, "rerank"), "k-reciprocal re-ranking before ranking (euclidean)")
    group.add_argument(
        "--k1",
        type=count(),
        default=reid.RerankConfig.k1,
        help="re-ranking: size of the k-reciprocal neighbourhoods (default: %(default)s)",
    )
    group.add_argument(
        "--k2",
        type=count(),
        default=reid.RerankConfig.k2,
        help="re-ranking: neighbours averaged into each encoding, 1 = off (default: %(default)s)",
    )
    group.add_argument(
        "--lambda",
        dest="lambda_value",
        type=rate(0.0, 1.0),
        default=reid.RerankConfig.lambda_value,
        help="re-ranking: weight of the original distance in [0, 1] (default: %(default)s)",
    )
    group.add_argument(
        "--aqe",
        dest="aqe_k",
        type=count(0),
        default=reid.AQEConfig.k,
        help="alpha query expansion: neighbours averaged into each feature, 0 = off (default: %(default)s)",
    )
    group.add_argument(
        "--aqe-alpha",
        type=rate(),
        default=reid.AQEConfig.alpha,
        help="alpha query expansion: exponent of the similarity weights (default: %(default)s)",
    )
    flag(
        group,
        "flip",
        default_of(ReIDEvaluator, "flip"),
        "test features are the sum of the image's and its mirror's features",
    )
    flag(group, "normalize", default_of(ReIDEvaluator, "normalize"), "L2-normalise test features before the distance")
    group.add_argument(
        "--eval-batch-size",
        type=count(),
        default=default_of(DataConfig, "eval_batch_size"),
        help="images per evaluation batch (default: %(default)s)",
    )
    group.add_argument(
        "--workers",
        type=count(0),
        default=default_of(DataConfig, "workers"),
        help="DataLoader worker processes, 0 = the main process (default: %(default)s)",
    )
    group.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    flag(group, "amp", False, "automatic mixed precision (bfloat16 on CPU, float16 + loss scaling on CUDA)")
    group.add_argument(
        "--config", default=None, help="TOML (or YAML) file of option values; the command line wins over it"
    )


def add_data_options(parser):
    """``ptl train``: dataset, input size and sampling."""
    from ..data import list_datasets
    from ..data.config import DataConfig

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=list_datasets(aliases=True),
        default="market1501",
        metavar="DATASET",
        help=f"dataset reader, one of {', '.join(list_datasets(aliases=True))}; a `ptl synth` folder "
        f"is read as market1501 (default: %(default)s)",
    )
    data.add_argument(
        "--root", default=None, help="dataset folder (or its parent; market_duke: the parent of both datasets)"
    )
    data.add_argument(
        "--task",
        choices=("reid", "classification"),
        default=None,
        help="reid or classification (default: the dataset's; CIFAR datasets are classification)",
    )
    data.add_argument(
        "--height",
        type=count(),
        default=None,
        help="input height (default: the network's, 256, or 384 for MGN; CIFAR: 32)",
    )
    data.add_argument(
        "--width", type=count(), default=None, help="input width (default: the network's, 128; CIFAR: 32)"
    )
    data.add_argument(
        "--p",
        type=count(),
        default=None,
        help=f"identities per ReID batch, P of P×K (default {default_of(DataConfig, 'p')}, 4 for MGN)",
    )
    data.add_argument(
        "--k",
        type=count(),
        default=default_of(DataConfig, "k"),
        help="images per identity in a ReID batch, K of P×K (default: %(default)s)",
    )
    data.add_argument(
        "--batch-size",
        type=count(),
        default=default_of(DataConfig, "batch_size"),
        help="classification batch size (default: %(default)s)",
    )
    data.add_argument(
        "--erasing",
        type=rate(0.0, 1.0),
        default=default_of(DataConfig, "erasing"),
        help="random erasing probability, ReID, 0 = off (default: %(default)s)",
    )
    data.add_argument(
        "--pad",
        type=count(0),
        default=default_of(DataConfig, "pad"),
        help="zero padding before the random crop, ReID (default: %(default)s)",
    )
    flag(data, "augment", default_of(DataConfig, "augment"), "CIFAR standard augmentation: pad 4 + random crop + flip")


def add_model_options(parser):
    """``ptl train``: the network."""
    from ..models import list_models

    names = list_models(aliases=True)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--arch",
        choices=names,
        default="ptl_resnet50",
        metavar="ARCH",
        help=f"network: a backbone NAME, its PTL version ptl_NAME or PTL-v2 version ptl_v2_NAME "
        f"(default: %(default)s); one of {', '.join(names)}",
    )
    flag(model, "v2", False, "PTL-v2 cells for a ptl_* network (the same as naming ptl_v2_*)")
    model.add_argument("--pretrained", default=None, help="local torchvision checkpoint of the backbone")
    model.add_argument("--last-stride", type=int, choices=(1, 2), default=1, help="ResNet layer4 stride (default 1)")
    model.add_argument(
        "--dropout",
        type=rate(0.0, below=1.0),
        default=None,
        help="dropout of the head (default: 0.5 for ReID, none for MGN)",
    )
    model.add_argument(
        "--init-from", default=None, help="start from a ptl checkpoint's weights with a new head (chained fine-tuning)"
    )


def add_optim_options(parser):
    """``ptl train``: SGD-M, schedule and loss."""
    from ..train import ReIDLoss, TrainConfig

    optim = parser.add_argument_group("optimisation")
    optim.add_argument(
        "--epochs",
        type=count(),
        default=default_of(TrainConfig, "epochs"),
        help="training epochs (default: %(default)s)",
    )
    optim.add_argument(
        "--lr", type=rate(), default=default_of(TrainConfig, "lr"), help="learning rate (default: %(default)s)"
    )
    optim.add_argument(
        "--head-lr",
        type=rate(),
        default=default_of(TrainConfig, "head_lr"),
        help="learning rate of the head (default: --lr)",
    )
    optim.add_argument(
        "--momentum",
        type=rate(0.0, below=1.0),
        default=default_of(TrainConfig, "momentum"),
        help="SGD momentum in [0, 1) (default: %(default)s)",
    )
    flag(optim, "nesterov", default_of(TrainConfig, "nesterov"), "Nesterov momentum")
    optim.add_argument(
        "--weight-decay",
        type=rate(),
        default=default_of(TrainConfig, "weight_decay"),
        help="weight decay (default: %(default)s)",
    )
    optim.add_argument(
        "--step-size",
        type=count(),
        default=default_of(TrainConfig, "step_size"),
        help="epochs between learning-rate steps (default: %(default)s)",
    )
    optim.add_argument(
        "--gamma",
        type=rate(),
        default=default_of(TrainConfig, "gamma"),
        help="learning-rate factor at each step (default: %(default)s)",
    )
    optim.add_argument(
        "--label-smoothing",
        type=rate(0.0, below=1.0),
        default=default_of(ReIDLoss, "label_smoothing"),
        help="cross-entropy label smoothing (default: %(default)s)",
    )
    optim.add_argument(
        "--loss",
        choices=("auto", "ce", "mgn"),
        default="auto",
        help="ce: cross-entropy (+ --triplet-weight batch-hard triplet); mgn: CE averaged over MGN's "
        "8 classifiers + triplet averaged over its 3 global features; auto: mgn for MGN networks",
    )
    optim.add_argument(
        "--triplet-weight",
        type=rate(),
        default=None,
        help=f"weight of the batch-hard triplet loss, ReID, 0 = off (default "
        f"{default_of(ReIDLoss, 'triplet_weight')}, 1 with --loss mgn)",
    )
    optim.add_argument(
        "--triplet-margin",
        type=rate(minimum=None),
        default=None,
        help=f"triplet margin, negative = soft margin (default {default_of(ReIDLoss, 'triplet_margin')}"
        f", 1.2 with --loss mgn)",
    )


def add_run_options(parser):
    """``ptl train``: evaluation/save cadence, run folder, resume, seed."""
    from ..train import TrainConfig

    run = parser.add_argument_group("run")
    run.add_argument(
        "--eval-every",
        type=count(0),
        default=default_of(TrainConfig, "eval_every"),
        help="evaluate every N epochs and after the last, 0 = after the last only (default: %(default)s)",
    )
    run.add_argument(
        "--save-every",
        type=count(0),
        default=default_of(TrainConfig, "save_every"),
        help="write last.pt every N epochs and after the last, 0 = after the last only (default: %(default)s)",
    )
    run.add_argument(
        "--out",
        default=default_of(TrainConfig, "out_dir"),
        help="run folder: metrics.csv, curves.png, last.pt, best.pt (default: %(default)s)",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue the run in --out from a checkpoint (no value: OUT/last.pt); the options that "
        "change training must match the checkpoint's (--epochs may grow)",
    )
    flag(
        run,
        "overwrite",
        default_of(TrainConfig, "overwrite"),
        "replace the run already in --out (its checkpoints, metrics.csv and curves.png are deleted first)",
    )
    run.add_argument("--seed", type=count(0), default=0, help="random seed (default: %(default)s)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check every option, print the resolved settings (and a config file's paper numbers) "
        "and stop: no data is read, no network built",
    )
    flag(run, "progress", default_of(TrainConfig, "progress"), "progress bar")
    flag(run, "tensorboard", False, "also write the epoch scalars to OUT/tensorboard (needs the tensorboard package)")


def add_method_options(parser):
    """``ptl train``: STD, rolling back and chained fine-tuning."""
    from ..train import RollbackSchedule
    from ..train.distill import DEFAULT_STD_LAMBDA

    methods = parser.add_argument_group("methods (STD, rolling back, chained fine-tuning)")
    methods.add_argument(
        "--teacher",
        default=None,
        help="STD: a `ptl train` checkpoint whose network (frozen, eval mode) teaches its "
        "features; evaluated once before training",
    )
    methods.add_argument(
        "--std-lambda",
        type=rate(0.0, 1.0),
        default=None,
        help=f"STD: weight of the L1 feature term, loss = (1-λ)·CE + λ·L1 (default "
        f"{DEFAULT_STD_LAMBDA}; needs --teacher)",
    )
    methods.add_argument(
        "--rollback-periods",
        type=count(0),
        default=0,
        help=f"rolling back: number of periods, 0 = off (the paper: "
        f"{default_of(RollbackSchedule, 'periods')}); replaces --epochs by periods × "
        f"--period-epochs and the step schedule by the periods' own",
    )
    methods.add_argument(
        "--period-epochs",
        type=count(),
        default=default_of(RollbackSchedule, "epochs_per_period"),
        help="rolling back: epochs per period (default: %(default)s)",
    )
    methods.add_argument(
        "--period-decay-epoch",
        type=count(),
        default=None,
        help="rolling back: epoch of a period at which its rates are multiplied by --gamma (default: half the period)",
    )
    methods.add_argument(
        "--kept-lr",
        type=rate(),
        default=None,
        help="rolling back: rate of the kept blocks in periods >= 2 (default --lr/10); the "
        "rolled-back blocks and the side stream use --lr, the head --head-lr (default "
        "10·--lr) in period 1",
    )
    methods.add_argument(
        "--chain",
        default=None,
        help="chained fine-tuning: comma-separated datasets trained in turn, each from the "
        "previous one's last.pt with a new head, e.g. duke,market,msmt17 (folders under "
        "--root, or NAME=FOLDER); step runs go to OUT/1_NAME, OUT/2_NAME, ...",
    )


def build_parser():
    """``(parser, {command: subparser})`` of the ``ptl`` command line."""
    from . import demo, export, extract, pretrain, synth
    from . import evaluate as evaluate_command

    parser = Parser(
        prog="ptl",
        description="Progressive transfer learning for person re-identification.",
        epilog="Distributed: torchrun --nproc_per_node N -m ptl_ext train ...",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of every error, user errors included"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{demo,train,eval,synth,pretrain,extract,export,info}"
    )

    demo.add_options(
        commands.add_parser(
            "demo",
            help="a transfer experiment on synthetic data: direct transfer, fine-tuning, PTL, STD, rolling back",
            description=demo.DESCRIPTION,
        )
    )

    train = commands.add_parser(
        "train",
        help="train a network on a dataset",
        description="Train a ReID network (or a CIFAR classifier) with SGD-M, evaluate "
        "every N epochs, write metrics.csv, curves.png and checkpoints.",
    )
    for add in (
        add_data_options,
        add_model_options,
        add_optim_options,
        add_run_options,
        add_method_options,
        add_eval_options,
    ):
        add(train)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a checkpoint",
        description="Evaluate a checkpoint written by `ptl train` on its dataset's query/gallery (or test) split.",
    )
    evaluate.add_argument("--checkpoint", required=True, help="a last.pt / best.pt of `ptl train`")
    evaluate.add_argument("--dataset", default=None, help="dataset reader (default: the checkpoint's)")
    evaluate.add_argument("--root", default=None, help="dataset folder (default: the checkpoint's)")
    add_eval_options(evaluate)
    evaluate_command.add_visualize_options(evaluate)

    synth.add_options(
        commands.add_parser(
            "synth",
            help="write a synthetic Market-format dataset",
            description="Write a synthetic ReID dataset in the Market-1501 layout: identities differ by clothing, "
            "cameras by lighting, background, viewpoint and occlusion. Deterministic under --seed.",
        )
    )
    extract.add_options(
        commands.add_parser(
            "extract", help="features of your own images from a checkpoint", description=extract.DESCRIPTION
        )
    )
    export.add_options(
        commands.add_parser(
            "export",
            help="export a checkpoint's network (ONNX, TorchScript, ExportedProgram)",
            description=export.DESCRIPTION,
        )
    )
    commands.add_parser(
        "info",
        help="versions, build, GPUs and compiled ops, for bug reports",
        description="Print the versions (python, torch, CUDA, faiss ...), what was built (CPU kernel "
        "family, CUDA architectures or CPU-only), the visible GPUs and whether the "
        "compiled ops are loaded.",
    )

    pretrain.add_options(
        commands.add_parser(
            "pretrain",
            help="pre-train a plain backbone on a source set, export it with torchvision keys",
            description=pretrain.DESCRIPTION,
        )
    )
    return parser, commands.choices
