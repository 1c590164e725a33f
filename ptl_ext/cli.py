"""The ``ptl`` command: ``ptl demo | train | eval | synth`` (also ``python -m ptl_ext``).

Options can also come from a TOML file (``--config run.toml``; YAML too when PyYAML is
installed) whose keys are the long option names (``step_size`` or ``step-size``); options given
on the command line win over the file. Distributed training: ``torchrun --nproc_per_node N -m
ptl_ext train ...`` (gloo on CPU, nccl on CUDA).
"""

import argparse
import os
import sys
import tempfile
import time

DEMO_ARCH = "resnet34"
CIFAR_DATASETS = {"cifar10": 10, "cifar100": 100}


# ---------------------------------------------------------------------------------------------- parser
def _add_common_eval_options(parser):
    parser.add_argument("--metric", choices=("euclidean", "cosine"), default="euclidean",
                        help="feature distance for retrieval (default: euclidean, squared)")
    parser.add_argument("--rerank", action=argparse.BooleanOptionalAction, default=False,
                        help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3) before ranking")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                        help="test features are the sum of the image's and its mirror's features")
    parser.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=True,
                        help="L2-normalise test features before the distance")
    parser.add_argument("--eval-batch-size", type=int, default=128, help="images per evaluation batch")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (0 = main process)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=False,
                        help="automatic mixed precision (bfloat16 on CPU, float16 + loss scaling on CUDA)")
    parser.add_argument("--config", default=None, help="TOML (or YAML) file of option values")


def _add_train_options(parser):
    from .data import REID_DATASETS
    from .train.builders import ARCHS

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=sorted(REID_DATASETS) + sorted(CIFAR_DATASETS), default="market1501",
                      help="dataset reader (a `ptl synth` folder is read as market1501)")
    data.add_argument("--root", default=None,
                      help="dataset folder (or its parent; market_duke: the parent of both datasets)")
    data.add_argument("--task", choices=("reid", "classification"), default=None,
                      help="reid or classification (default: the dataset's; CIFAR datasets are classification)")
    data.add_argument("--height", type=int, default=None, help="input image height (default 256, 384 for mgn*; "
                                                               "CIFAR: 32)")
    data.add_argument("--width", type=int, default=None, help="input image width (default 128; CIFAR: 32)")
    data.add_argument("--p", type=int, default=None,
                      help="identities per ReID batch (P of P×K; default 16, 4 for mgn*)")
    data.add_argument("--k", type=int, default=4, help="images per identity in a ReID batch (K of P×K)")
    data.add_argument("--batch-size", type=int, default=64, help="classification batch size")
    data.add_argument("--erasing", type=float, default=0.5, help="random erasing probability (ReID, 0 = off)")
    data.add_argument("--pad", type=int, default=10, help="zero padding before the random crop (ReID)")
    data.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                      help="CIFAR standard augmentation: pad 4 + random crop + flip")
    model = parser.add_argument_group("model")
    model.add_argument("--arch", choices=ARCHS, default="ptl_resnet50",
                       help="network: a backbone or its PTL version (ptl_*)")
    model.add_argument("--v2", action=argparse.BooleanOptionalAction, default=False,
                       help="PTL-v2 cells (BConvCellV2) for ptl_* networks")
    model.add_argument("--pretrained", default=None, help="local torchvision checkpoint of the backbone")
    model.add_argument("--last-stride", type=int, choices=(1, 2), default=1, help="ResNet layer4 stride")
    model.add_argument("--dropout", type=float, default=None, help="dropout of the head (default: 0.5 for ReID)")
    model.add_argument("--init-from", default=None,
                       help="start from a ptl checkpoint's weights with a new head (chained fine-tuning)")
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=int, default=50, help="training epochs")
    optim.add_argument("--lr", type=float, default=0.01, help="learning rate")
    optim.add_argument("--head-lr", type=float, default=None, help="learning rate of the head (default: --lr)")
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    optim.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=False, help="Nesterov momentum")
    optim.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay")
    optim.add_argument("--step-size", type=int, default=10, help="epochs between learning-rate steps")
    optim.add_argument("--gamma", type=float, default=0.1, help="learning-rate factor at each step")
    optim.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing")
    optim.add_argument("--loss", choices=("auto", "ce", "mgn"), default="auto",
                       help="ce: cross-entropy (+ --triplet-weight batch-hard triplet); mgn: CE averaged over MGN's "
                            "8 classifiers + triplet averaged over its 3 global features; auto: mgn for mgn* archs")
    optim.add_argument("--triplet-weight", type=float, default=None,
                       help="weight of the batch-hard triplet loss (ReID; 0 = off; default 0, 1 with --loss mgn)")
    optim.add_argument("--triplet-margin", type=float, default=None,
                       help="triplet margin (negative = soft margin; default 0.3, 1.2 with --loss mgn)")
    run = parser.add_argument_group("run")
    run.add_argument("--eval-every", type=int, default=10,
                     help="evaluate every N epochs and after the last (0 = after the last only)")
    run.add_argument("--save-every", type=int, default=1,
                     help="write last.pt every N epochs and after the last (0 = after the last only)")
    run.add_argument("--out", default="runs/ptl", help="run folder: metrics.csv, curves.png, last.pt, best.pt")
    run.add_argument("--resume", nargs="?", const="auto", default=None,
                     help="resume from a checkpoint (no value: OUT/last.pt)")
    run.add_argument("--seed", type=int, default=0, help="random seed")
    run.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")


def _add_method_options(parser):
    methods = parser.add_argument_group("methods (STD, rolling back, chained fine-tuning)")
    methods.add_argument("--teacher", default=None,
                         help="STD: a `ptl train` checkpoint whose network (frozen, eval mode) teaches its "
                              "features; evaluated once before training")
    methods.add_argument("--std-lambda", type=float, default=None,
                         help="STD: weight of the L1 feature term, loss = (1-λ)·CE + λ·L1 (default 0.8; needs "
                              "--teacher)")
    methods.add_argument("--rollback-periods", type=int, default=0,
                         help="rolling back: number of periods (0 = off; the paper: 4); replaces --epochs by "
                              "periods × --period-epochs and the step schedule by the periods' own")
    methods.add_argument("--period-epochs", type=int, default=40, help="rolling back: epochs per period")
    methods.add_argument("--period-decay-epoch", type=int, default=None,
                         help="rolling back: epoch of a period at which its rates are multiplied by --gamma "
                              "(default: half the period)")
    methods.add_argument("--kept-lr", type=float, default=None,
                         help="rolling back: rate of the kept blocks in periods >= 2 (default --lr/10); the "
                              "rolled-back blocks and the head use --lr, the head --head-lr (default 10·--lr) "
                              "in period 1")
    methods.add_argument("--chain", default=None,
                         help="chained fine-tuning: comma-separated datasets trained in turn, each from the "
                              "previous one's last.pt with a new head, e.g. duke,market,msmt17 (folders under "
                              "--root, or NAME=FOLDER); step runs go to OUT/1_NAME, OUT/2_NAME, ...")


def build_parser():
    """The ``ptl`` argument parser with its four subcommands."""
    from .train.builders import BACKBONES

    parser = argparse.ArgumentParser(
        prog="ptl", description="Progressive transfer learning for person re-identification.",
        epilog="Distributed: torchrun --nproc_per_node N -m ptl_ext train ...")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{demo,train,eval,synth}")

    demo = commands.add_parser("demo", help="generate a synthetic set, compare baseline, PTL, PTL+STD and "
                                            "rolling back on it",
                               description="Generate a synthetic Market-format set and train on it: the plain "
                                           "backbone (baseline) and its PTL network from scratch, the plain "
                                           "backbone taught by the PTL network (STD), and the baseline's weights "
                                           "refine-tuned by rolling back; evaluate each and print a table.")
    demo.add_argument("--out", default=None, help="demo folder (default: a new folder in the temp directory)")
    demo.add_argument("--arch", default=DEMO_ARCH, choices=sorted(BACKBONES),
                      help=f"plain backbone to compare with ptl_ARCH (default {DEMO_ARCH})")
    demo.add_argument("--epochs", type=int, default=10, help="training epochs per network")
    demo.add_argument("--rollback-periods", type=int, default=3,
                      help="rolling-back periods of the last row (each --epochs/periods epochs, at least 1)")
    demo.add_argument("--train-ids", type=int, default=32, help="synthetic training identities")
    demo.add_argument("--test-ids", type=int, default=32, help="synthetic test identities")
    demo.add_argument("--images-per-cam", type=int, default=4, help="images per identity and camera")
    demo.add_argument("--height", type=int, default=64, help="image height")
    demo.add_argument("--width", type=int, default=32, help="image width")
    demo.add_argument("--lr", type=float, default=0.05, help="learning rate (from scratch, so higher than PTL's 0.01)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the data and of the training")
    demo.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    demo.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bars")

    train = commands.add_parser("train", help="train a network on a dataset",
                                description="Train a ReID network (or a CIFAR classifier) with SGD-M, evaluate "
                                            "every N epochs, write metrics.csv, curves.png and checkpoints.")
    _add_train_options(train)
    _add_method_options(train)
    _add_common_eval_options(train)

    evaluate = commands.add_parser("eval", help="evaluate a checkpoint",
                                   description="Evaluate a checkpoint written by `ptl train` on its dataset's "
                                               "query/gallery (or test) split.")
    evaluate.add_argument("--checkpoint", required=True, help="a last.pt / best.pt of `ptl train`")
    evaluate.add_argument("--dataset", default=None, help="dataset reader (default: the checkpoint's)")
    evaluate.add_argument("--root", default=None, help="dataset folder (default: the checkpoint's)")
    _add_common_eval_options(evaluate)

    synth = commands.add_parser("synth", help="write a synthetic Market-format dataset",
                                description="Write a synthetic ReID dataset in the Market-1501 layout: identities "
                                            "differ by clothing, cameras by lighting, background, viewpoint and "
                                            "occlusion. Deterministic under --seed.")
    synth.add_argument("out", help="output folder (created; must not hold a dataset already)")
    synth.add_argument("--train-ids", type=int, default=32, help="training identities")
    synth.add_argument("--test-ids", type=int, default=32, help="test identities")
    synth.add_argument("--cams", type=int, default=4, help="cameras (2..6)")
    synth.add_argument("--images-per-cam", type=int, default=3, help="images per identity and camera (>= 2)")
    synth.add_argument("--distractors", type=int, default=10, help="pid-0 distractor images in the gallery")
    synth.add_argument("--junk", type=int, default=5, help="pid -1 junk images in the gallery")
    synth.add_argument("--height", type=int, default=128, help="image height")
    synth.add_argument("--width", type=int, default=64, help="image width")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument("--format", choices=("market", "cifar10", "cifar100"), default="market",
                       help="market (default) or a CIFAR-10/100 pickle set (classes differ by coarse colour "
                            "patterns; only --seed and the --*-per-class options apply)")
    synth.add_argument("--train-per-class", type=int, default=50, help="CIFAR formats: training images per class")
    synth.add_argument("--test-per-class", type=int, default=10, help="CIFAR formats: test images per class")
    return parser, commands.choices


def load_config_file(path):
    """Option values from a TOML (or, with PyYAML installed, YAML) file as a flat dict."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--config: file {path} does not exist")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise RuntimeError(f"--config {path}: YAML needs PyYAML (pip install pyyaml); TOML works without it") from None
        with open(path) as fh:
            values = yaml.safe_load(fh) or {}
    else:
        import tomllib

        with open(path, "rb") as fh:
            try:
                values = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"--config {path}: invalid TOML: {exc}") from exc
    if not isinstance(values, dict) or any(isinstance(v, dict) for v in values.values()):
        raise ValueError(f"--config {path}: expected flat `option = value` pairs")
    return {key.replace("-", "_"): value for key, value in values.items()}


def parse_args(argv=None):
    """Parse ``argv``, filling defaults from ``--config`` when given."""
    parser, commands = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config", None):
        sub = commands[args.command]
        values = load_config_file(args.config)
        known = {action.dest for action in sub._actions}
        unknown = sorted(set(values) - known - {"config"})
        if unknown:
            raise ValueError(f"--config {args.config}: unknown options {', '.join(unknown)}")
        sub.set_defaults(**values)
        args = parser.parse_args(argv)
    if args.command == "train":
        _resolve_train_defaults(args)
    return args


TRAIN_DEFAULTS = {"height": 256, "width": 128, "p": 16, "triplet_weight": 0.0, "triplet_margin": 0.3,
                  "std_lambda": 0.8}
MGN_TRAIN_DEFAULTS = {"height": 384, "width": 128, "p": 4}  # the released MGN+PTL set-up: 384×128, 4 ids × 4
MGN_LOSS_DEFAULTS = {"triplet_weight": 1.0, "triplet_margin": 1.2}
METHOD_OPTIONS = {"std_lambda": "teacher", "kept_lr": "rollback_periods", "period_decay_epoch": "rollback_periods"}


def _resolve_train_defaults(args):
    """Check ``--task`` against the dataset and fill the options whose defaults depend on the arch or loss."""
    from .train.builders import MGN_ARCHS

    if args.task is not None and args.task != _task(args.dataset):
        raise ValueError(f"--task {args.task} does not fit --dataset {args.dataset} (a {_task(args.dataset)} "
                         f"dataset); classification needs --dataset {' or '.join(CIFAR_DATASETS)}")
    mgn = args.arch in MGN_ARCHS
    if args.loss == "auto":
        args.loss = "mgn" if mgn else "ce"
    if (args.loss == "mgn") != mgn:
        raise ValueError(f"--loss {args.loss} does not fit --arch {args.arch}: --loss mgn goes with (and only with) "
                         f"{' or '.join(MGN_ARCHS)}")
    for name, needs in METHOD_OPTIONS.items():
        if getattr(args, name) is not None and not getattr(args, needs):
            raise ValueError(f"--{name.replace('_', '-')} applies only with --{needs.replace('_', '-')}")
    defaults = {**TRAIN_DEFAULTS, **(MGN_TRAIN_DEFAULTS if mgn else {}), **(MGN_LOSS_DEFAULTS if mgn else {})}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


# ------------------------------------------------------------------------------------------- running
def _device(name):
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available")
    return device


def _task(dataset):
    return "classification" if dataset in CIFAR_DATASETS else "reid"


def build_data(args, info, height, width, train=True):
    """``(train_loader, evaluator, num_classes, protocol)`` for ``args.dataset`` at ``args.root``.

    ``train=False`` (evaluation only) builds no training loader (``None``).
    """
    from . import data as D
    from .train import ClassificationEvaluator, ReIDEvaluator

    if args.root is None:
        raise ValueError("--root is required: the dataset folder")
    if _task(args.dataset) == "reid":
        dataset = D.load_reid_dataset(args.dataset, args.root)
        query, gallery = D.build_reid_eval_loaders(dataset, height, width, args.eval_batch_size, args.workers,
                                                   info.rank, info.world_size)
        evaluator = ReIDEvaluator(query, gallery, metric=args.metric, rerank=args.rerank, flip=args.flip,
                                  normalize=args.normalize, protocol=dataset.protocol)
        train_loader = None
        if train:
            train_loader = D.build_reid_train_loader(dataset, height, width, args.p, args.k, args.workers,
                                                     args.seed, info.rank, info.world_size, args.erasing, args.pad)
        return train_loader, evaluator, dataset.num_train_pids, dataset.protocol
    import torch

    classes = CIFAR_DATASETS[args.dataset]
    test_images, test_labels = D.load_cifar(args.root, classes, train=False)
    test_set = D.TensorImageDataset(test_images, test_labels, D.build_cifar_transforms(False))
    test_loader = D.build_dataloader(test_set, batch_size=args.eval_batch_size, num_workers=args.workers,
                                     sampler=D.ShardSampler(len(test_set), info.rank, info.world_size))
    train_loader = None
    if train:
        images, labels = D.load_cifar(args.root, classes, train=True)
        train_set = D.TensorImageDataset(images, labels, D.build_cifar_transforms(True, args.augment))
        sampler = None
        if info.distributed:
            sampler = torch.utils.data.DistributedSampler(train_set, info.world_size, info.rank, shuffle=True,
                                                          seed=args.seed)
        train_loader = D.build_dataloader(train_set, batch_size=args.batch_size, sampler=sampler,
                                          shuffle=sampler is None, drop_last=True, num_workers=args.workers,
                                          seed=args.seed + info.rank)
    return train_loader, ClassificationEvaluator(test_loader), classes, "classification"


def _init_from(model, path):
    """Load a checkpoint's weights except its head (chained fine-tuning across datasets)."""
    from .train import load_checkpoint

    weights = {k: v for k, v in load_checkpoint(path)["model"].items() if not k.startswith("head.")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    foreign = [k for k in missing if not k.startswith("head.")] + list(unexpected)
    if foreign:
        raise ValueError(f"--init-from {path}: the checkpoint's network differs from --arch: "
                         f"{', '.join(foreign[:5])}{' ...' if len(foreign) > 5 else ''}")


def _std_loss(args, model, loss_fn, evaluator, size, device, info):
    """STD (``--teacher``): ``(STDLoss around loss_fn, teacher table rows)``; the teacher is evaluated once.

    Without ``--teacher`` returns ``(loss_fn, [])``.
    """
    from .train import FrozenTeacher, STDLoss, load_checkpoint
    from .train.builders import count_parameters, model_from_checkpoint
    from .train.distill import check_feature_sizes

    if not args.teacher:
        return loss_fn, []
    state = load_checkpoint(args.teacher)
    teacher_net = model_from_checkpoint(state, f"--teacher {args.teacher}")
    if (state["meta"]["height"], state["meta"]["width"]) != tuple(size):
        raise ValueError(f"--teacher {args.teacher}: trained on {state['meta']['height']}x{state['meta']['width']} "
                         f"images, this run uses {size[0]}x{size[1]}")
    parameters = count_parameters(teacher_net)  # before freezing: it counts trainable parameters
    teacher = FrozenTeacher(teacher_net, device, args.amp)
    check_feature_sizes(model, teacher)
    metrics = evaluator(teacher.model, device, args.amp, info)
    rows = [(f"teacher {state['meta']['arch']}", parameters, metrics)]
    if info.is_main:
        print(f"STD teacher {args.teacher}:\n{format_table(rows)}", flush=True)
    return STDLoss(args.std_lambda, teacher, base=loss_fn), rows


def _rollback_hook(args, model):
    """Rolling back (``--rollback-periods``): a :class:`~ptl_ext.train.RollbackHook` holding ``model``'s
    current (pre-trained) weights, or ``None``."""
    from .train import RollbackHook, RollbackSchedule

    if args.rollback_periods < 0:
        raise ValueError(f"--rollback-periods must be >= 0 (0 = off), got {args.rollback_periods}")
    if args.rollback_periods == 0:
        return None
    schedule = RollbackSchedule(periods=args.rollback_periods, epochs_per_period=args.period_epochs,
                                decay_epoch=args.period_decay_epoch, lr=args.lr,
                                first_head_lr=10 * args.lr if args.head_lr is None else args.head_lr,
                                kept_lr=args.lr / 10 if args.kept_lr is None else args.kept_lr, gamma=args.gamma)
    return RollbackHook(model, schedule)


CHAIN_ALIASES = {"duke": "dukemtmc_reid", "market": "market1501"}


def parse_chain(spec, root):
    """The steps ``[(dataset, folder), ...]`` of a ``--chain`` value ``NAME[=FOLDER],NAME[=FOLDER],...``.

    ``duke`` and ``market`` stand for ``dukemtmc_reid`` and ``market1501``; a step without a folder
    reads ``root`` (the parent folder of the datasets).
    """
    from .data import REID_DATASETS

    known = sorted(REID_DATASETS) + sorted(CIFAR_DATASETS)
    steps = []
    for item in spec.split(","):
        name, has_folder, folder = item.strip().partition("=")
        name = CHAIN_ALIASES.get(name, name)
        if name not in known:
            raise ValueError(f"--chain: unknown dataset {name!r}; expected NAME[=FOLDER] with NAME one of "
                             f"{', '.join(known + sorted(CHAIN_ALIASES))}")
        folder = folder if has_folder else root
        if not folder:
            raise ValueError(f"--chain: step {name} has no folder: give --root or {name}=FOLDER")
        steps.append((name, folder))
    return steps


def run_chain(args):
    """Chained fine-tuning (``--chain``): one training per step, each from the previous step's ``last.pt``
    (backbone and cells kept, a new head for the new identities); returns the trainers.

    Step ``i`` writes to ``OUT/i_NAME``; ``--resume`` resumes every step from its own ``last.pt`` (a
    finished step is not trained again). ``--init-from`` initialises the first step.
    """
    import torch

    if args.resume not in (None, "auto"):
        raise ValueError("--chain resumes each step from its own last.pt: give --resume without a value")
    steps = parse_chain(args.chain, args.root)
    trainers, rows, init_from = [], [], args.init_from
    for i, (name, root) in enumerate(steps, start=1):
        out = os.path.join(args.out, f"{i}_{name}")
        resume = "auto" if args.resume and os.path.isfile(os.path.join(out, "last.pt")) else None
        step = argparse.Namespace(**{**vars(args), "chain": None, "dataset": name, "root": root, "out": out,
                                     "init_from": init_from, "resume": resume})
        print(f"\n== chain step {i}/{len(steps)}: {name} ({root})", flush=True)
        trainer = run_train(step)
        if trainer.info.distributed:
            torch.distributed.barrier()  # rank 0 has written last.pt before the next step reads it
        init_from = trainer.path("last.pt")
        trainers.append(trainer)
        rows.append((f"{i}. {name}", trainer.meta["parameters"], trainer.history[-1]))
    if trainers[-1].info.is_main:
        print(f"\nchain {' -> '.join(name for name, _ in steps)}:\n{format_table(rows)}")
    return trainers


def run_train(args):
    """Train as ``args`` says (see ``ptl train --help``); returns the trainer (rank 0 prints a summary).

    With ``--chain`` runs :func:`run_chain` and returns its last trainer.
    """
    if args.chain:
        return run_chain(args)[-1]
    import torch

    from .train import ClassificationLoss, ReIDLoss, TrainConfig, Trainer, init_distributed
    from .train.builders import build_model, count_parameters

    device = _device(args.device)
    info = init_distributed(device.type)
    if device.type == "cuda" and info.distributed:
        device = torch.device("cuda", info.local_rank)
    task = _task(args.dataset)
    height, width = (32, 32) if task == "classification" else (args.height, args.width)
    train_loader, evaluator, num_classes, protocol = build_data(args, info, height, width)
    torch.manual_seed(args.seed)
    head = "cifar" if task == "classification" else "reid"
    model = build_model(args.arch, num_classes, (height, width), head=head, pretrained=args.pretrained,
                        last_stride=args.last_stride, v2=args.v2, dropout=args.dropout)
    if args.init_from and not args.resume:  # a resume restores the weights (and the rollback snapshot) anyway
        _init_from(model, args.init_from)
    torch.manual_seed(args.seed + 1000 * info.rank)  # ranks augment differently
    margin = None if args.triplet_margin < 0 else args.triplet_margin  # negative: soft margin
    if args.loss == "mgn":
        from .train import MGNLoss

        loss_fn = MGNLoss(margin, args.triplet_weight, label_smoothing=args.label_smoothing)
    elif task == "reid":
        loss_fn = ReIDLoss(args.label_smoothing, args.triplet_weight, margin)
    else:
        loss_fn = ClassificationLoss(args.label_smoothing)
    loss_fn, teacher_rows = _std_loss(args, model, loss_fn, evaluator, (height, width), device, info)
    rollback = _rollback_hook(args, model)
    epochs = rollback.schedule.total_epochs if rollback else args.epochs
    config = TrainConfig(epochs=epochs, lr=args.lr, head_lr=args.head_lr, momentum=args.momentum,
                         nesterov=args.nesterov, weight_decay=args.weight_decay, step_size=args.step_size,
                         gamma=args.gamma, amp=args.amp, eval_every=args.eval_every, save_every=args.save_every,
                         out_dir=args.out, progress=args.progress, title=f"{args.arch} on {args.dataset}")
    meta = {"arch": args.arch, "num_classes": num_classes, "height": height, "width": width, "v2": args.v2,
            "last_stride": args.last_stride, "head": head, "dropout": args.dropout, "dataset": args.dataset,
            "root": os.path.abspath(args.root), "protocol": protocol, "parameters": count_parameters(model)}
    if teacher_rows:
        meta["teacher"] = {"checkpoint": os.path.abspath(args.teacher), "metrics": teacher_rows[0][2]}
    methods = {"hooks": [rollback], "optimizer_factory": rollback.optimizer_factory} if rollback else {}
    trainer = Trainer(model, train_loader, config, evaluator=evaluator, loss_fn=loss_fn, device=device,
                      info=info, meta=meta, **methods)
    if args.resume:
        trainer.resume(os.path.join(args.out, "last.pt") if args.resume == "auto" else args.resume)
    if info.is_main:
        print(f"{args.arch}: {meta['parameters'] / 1e6:.2f} M parameters, {num_classes} classes, "
              f"{info.world_size} process(es) on {device}; run folder {args.out}", flush=True)
    trainer.fit()
    if info.is_main:
        print(format_table([*teacher_rows, (args.arch, meta["parameters"], trainer.history[-1])]))
    return trainer


def run_eval(args):
    """Evaluate ``args.checkpoint`` (see ``ptl eval --help``); returns the metrics dict."""
    from .train import init_distributed, load_checkpoint
    from .train.builders import model_from_checkpoint

    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(state, f"--checkpoint {args.checkpoint}")
    meta = state["meta"]
    args.dataset = args.dataset or meta["dataset"]
    args.root = args.root or meta["root"]
    device = _device(args.device)
    info = init_distributed(device.type)
    _, evaluator, _, _ = build_data(args, info, meta["height"], meta["width"], train=False)
    metrics = evaluator(model.to(device), device, args.amp, info)
    if info.is_main:
        print(format_table([(meta["arch"], meta.get("parameters"), metrics)]))
    return metrics


def run_synth(args):
    """Write a synthetic dataset (see ``ptl synth --help``); returns the generator's summary."""
    from .data import make_synthetic_market

    if args.format != "market":
        return _synth_cifar(args)
    info = make_synthetic_market(args.out, num_train_ids=args.train_ids, num_test_ids=args.test_ids,
                                 num_cams=args.cams, images_per_cam=args.images_per_cam,
                                 num_distractors=args.distractors, num_junk=args.junk, height=args.height,
                                 width=args.width, seed=args.seed)
    counts = info["counts"]
    print(f"wrote {sum(counts.values())} images to {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return info


def _synth_cifar(args):
    """``ptl synth OUT --format cifar10|cifar100``: a synthetic CIFAR set in the pickle release layout."""
    from .data.synthetic_cifar import make_synthetic_cifar

    info = make_synthetic_cifar(args.out, CIFAR_DATASETS[args.format], args.train_per_class, args.test_per_class,
                                seed=args.seed)
    print(f"wrote {info['train']} training and {info['test']} test images to {info['folder']}")
    return info


def format_table(rows):
    """A text table of ``(name, parameters or None, metrics dict)`` rows (fractions printed in %)."""
    reid = any("mAP" in metrics for _, _, metrics in rows)
    columns = ("mAP", "rank1", "rank5", "rank10", "mINP") if reid else ("top1_error",)
    titles = {"mAP": "mAP", "rank1": "CMC-1", "rank5": "CMC-5", "rank10": "CMC-10", "mINP": "mINP",
              "top1_error": "top-1 error"}
    width = max(12, *(len(name) for name, _, _ in rows))
    lines = [f"{'network':<{width}} {'params':>8} " + " ".join(f"{titles[c]:>11}" for c in columns)]
    for name, params, metrics in rows:
        cells = [f"{100 * metrics[c]:10.2f}%" if metrics.get(c) is not None else f"{'-':>11}" for c in columns]
        count = f"{params / 1e6:7.2f}M" if params else f"{'-':>8}"
        lines.append(f"{name:<{width}} {count} " + " ".join(cells))
    return "\n".join(lines)


def run_demo(args):
    """Synthetic data, then baseline, PTL, PTL+STD and rolling back trained and compared; returns the table rows."""
    from .data import make_synthetic_market

    if args.rollback_periods < 1:
        raise ValueError(f"--rollback-periods must be >= 1 (the demo's last row), got {args.rollback_periods}")
    out = args.out or tempfile.mkdtemp(prefix="ptl-demo-")
    data_dir = os.path.join(out, "data")
    if os.path.isdir(os.path.join(data_dir, "bounding_box_train")):
        print(f"using the synthetic dataset already in {data_dir}", flush=True)
    else:
        print(f"generating the synthetic dataset in {data_dir} ...", flush=True)
        make_synthetic_market(data_dir, num_train_ids=args.train_ids, num_test_ids=args.test_ids, num_cams=4,
                              images_per_cam=args.images_per_cam, height=args.height, width=args.width,
                              seed=args.seed)
    arch, ptl = args.arch, f"ptl_{args.arch}"
    common = ["train", "--dataset", "market1501", "--root", data_dir, "--height", str(args.height),
              "--width", str(args.width), "--dropout", "0", "--p", str(min(8, args.train_ids)), "--k", "4",
              "--triplet-weight", "1", "--pad", "4", "--erasing", "0.3", "--save-every", "0", "--seed",
              str(args.seed), "--workers", str(args.workers), "--device", "cpu",
              "--progress" if args.progress else "--no-progress"]
    scratch = ["--epochs", str(args.epochs), "--lr", str(args.lr), "--step-size", str(max(1, 2 * args.epochs // 3)),
               "--eval-every", str(max(1, args.epochs // 3))]
    period_epochs = str(max(1, args.epochs // args.rollback_periods))
    runs = [  # (row, run folder, options): STD needs the PTL run, rolling back the baseline's weights
        (arch, arch, ["--arch", arch, *scratch]),
        (ptl, ptl, ["--arch", ptl, *scratch]),
        (f"{arch} + STD", f"std_{arch}", ["--arch", arch, *scratch, "--teacher", os.path.join(out, ptl, "last.pt")]),
        (f"{arch} + rolling back", f"rollback_{arch}",
         ["--arch", arch, "--init-from", os.path.join(out, arch, "last.pt"), "--lr", "0.01",
          "--rollback-periods", str(args.rollback_periods), "--period-epochs", period_epochs,
          "--eval-every", period_epochs]),
    ]
    rows, plots = [], []
    for name, folder, options in runs:
        command = [*common, *options, "--out", os.path.join(out, folder)]
        print(f"\n== {name}: ptl {' '.join(command)}", flush=True)
        started = time.perf_counter()
        trainer = run_train(parse_args(command))
        print(f"   {name}: {time.perf_counter() - started:.0f} s", flush=True)
        rows.append((name, trainer.meta["parameters"], trainer.history[-1]))
        plots.append(trainer.path("curves.png"))
    print("\nsynthetic ReID, cross-camera retrieval: baseline and PTL from scratch; STD: the baseline network "
          f"taught by {ptl} (lambda 0.8); rolling back: the baseline's weights refine-tuned in "
          f"{args.rollback_periods} periods")
    print(format_table(rows))
    print("plots: " + ", ".join(plots))
    return rows


def main(argv=None):
    """Entry point of the ``ptl`` console script; returns the exit status."""
    try:
        args = parse_args(argv)
        {"demo": run_demo, "train": run_train, "eval": run_eval, "synth": run_synth}[args.command](args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"ptl: error: {exc}", file=sys.stderr)
        return 2
    return 0
