"""The ``ptl`` argument parser: one subparser per command, option defaults read from their homes.

Every default shown here lives in a config dataclass or a signature of the library
(:class:`~ptl_ext.train.TrainConfig`, :class:`~ptl_ext.data.config.DataConfig`,
:class:`~ptl_ext.train.RollbackSchedule`, the losses, the evaluator, the parts of
:class:`~ptl_ext.runs.RunSpec`); options whose default depends on the network (input size, P,
triplet terms for MGN) default to ``None`` and are filled in by :func:`ptl_ext.runs.build_spec`.
The type callables check ranges, so a value from the command line and the same value from a config
file pass the same test.
"""

from .option_types import Parser, count, default_of, flag, rate
from .run_args import add_method_options, add_run_options
from .train_args import add_data_options, add_model_options, add_optim_options


def add_eval_options(parser):
    """Options shared by ``train`` and ``eval``: distance, re-ranking, flip, normalisation, device."""
    from .. import reid
    from ..data.config import DataConfig
    from ..train.config import TrainConfig
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
    flag(
        group,
        "amp",
        default_of(TrainConfig, "amp"),
        "automatic mixed precision (bfloat16 on CPU, float16 + loss scaling on CUDA)",
    )
    group.add_argument(
        "--config", default=None, help="TOML (or YAML) file of option values; the command line wins over it"
    )


def command_of(argv):
    """The command named in ``argv`` (its first word that is not an option), or ``None``."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(only=None):
    """``(parser, {command: subparser})`` of the ``ptl`` command line.

    ``only``: the one command whose options are declared (``""``: none; the others get their names and descriptions
    only, enough for ``ptl --help``), so that parsing a command imports what that command needs and no more.
    """
    from . import demo, export, extract, pretrain, study, synth
    from . import evaluate as evaluate_command

    def wanted(command):
        return only is None or only == command

    parser = Parser(
        prog="ptl",
        description="Progressive transfer learning for person re-identification.",
        epilog="Distributed: torchrun --nproc_per_node N -m ptl_ext train ...",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of every error, user errors included"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{demo,train,eval,synth,pretrain,extract,export,info,study}"
    )

    demo_parser = commands.add_parser(
        "demo",
        help="a transfer experiment on synthetic data: direct transfer, fine-tuning, PTL, STD, rolling back",
        description=demo.DESCRIPTION,
    )
    if wanted("demo"):
        demo.add_options(demo_parser)

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
        if wanted("train"):
            add(train)

    evaluate = commands.add_parser(
        "eval",
        help="evaluate a checkpoint",
        description="Evaluate a checkpoint written by `ptl train` on its dataset's query/gallery (or test) split.",
    )
    if wanted("eval"):
        evaluate.add_argument("--checkpoint", required=True, help="a last.pt / best.pt of `ptl train`")
        evaluate.add_argument("--dataset", default=None, help="dataset reader (default: the checkpoint's)")
        evaluate.add_argument("--root", default=None, help="dataset folder (default: the checkpoint's)")
        add_eval_options(evaluate)
        evaluate_command.add_state_options(evaluate)
        evaluate_command.add_visualize_options(evaluate)

    synth_parser = commands.add_parser(
        "synth",
        help="write a synthetic Market-format dataset",
        description="Write a synthetic ReID dataset in the Market-1501 layout: identities differ by clothing, "
        "cameras by lighting, background, viewpoint and occlusion. Deterministic under --seed.",
    )
    extract_parser = commands.add_parser(
        "extract", help="features of your own images from a checkpoint", description=extract.DESCRIPTION
    )
    export_parser = commands.add_parser(
        "export",
        help="export a checkpoint's network (ONNX, TorchScript, ExportedProgram)",
        description=export.DESCRIPTION,
    )
    for command, module, sub in (("synth", synth, synth_parser), ("extract", extract, extract_parser)):
        if wanted(command):
            module.add_options(sub)
    if wanted("export"):
        export.add_options(export_parser)
    commands.add_parser(
        "info",
        help="versions, build, GPUs and compiled ops, for bug reports",
        description="Print the versions (python, torch, CUDA, faiss ...), what was built (CPU kernel "
        "family, CUDA architectures or CPU-only), the visible GPUs and whether the "
        "compiled ops are loaded.",
    )

    study_parser = commands.add_parser(
        "study",
        help="the transfer study on real images from real ImageNet weights (--smoke: a minute)",
        description=study.DESCRIPTION,
    )
    if wanted("study"):
        study.add_options(study_parser)
    pretrain_parser = commands.add_parser(
        "pretrain",
        help="pre-train a plain backbone on a source set, export it with torchvision keys",
        description=pretrain.DESCRIPTION,
    )
    if wanted("pretrain"):
        pretrain.add_options(pretrain_parser)
    return parser, commands.choices
