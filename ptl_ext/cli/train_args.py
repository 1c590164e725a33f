"""``ptl train`` options: the data, the network and the optimisation (defaults read from their homes)."""

from .option_types import count, default_of, flag, rate


def add_data_options(parser):
    """``ptl train``: dataset, input size and sampling."""
    from ..data import list_datasets
    from ..data.config import REID_SAMPLERS, DataConfig
    from ..runs.spec import RunSpec

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=list_datasets(aliases=True),
        default=default_of(RunSpec, "dataset"),
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
        "--sampler",
        choices=REID_SAMPLERS,
        default=default_of(DataConfig, "sampler"),
        help="ReID batches: pk (--p identities x --k images, needed by a triplet loss) or random (--batch-size "
        "images drawn uniformly) (default: %(default)s)",
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
        help="classification batch size, and the ReID batch size with --sampler random (default: %(default)s)",
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
    from ..models._registry import HEAD_INITS, HEAD_NAMES, MGN_REDUCTIONS, list_models
    from ..nn.modes import STATE_MODES
    from ..runs.spec import ModelOptions

    names = list_models(aliases=True)
    model = parser.add_argument_group("model")
    model.add_argument(
        "--arch",
        choices=names,
        default=default_of(ModelOptions, "arch"),
        metavar="ARCH",
        help=f"network: a backbone NAME, its PTL version ptl_NAME or PTL-v2 version ptl_v2_NAME "
        f"(default: %(default)s); one of {', '.join(names)}",
    )
    flag(model, "v2", False, "PTL-v2 cells for a ptl_* network (the same as naming ptl_v2_*)")
    model.add_argument("--pretrained", default=None, help="local torchvision checkpoint of the backbone")
    model.add_argument(
        "--last-stride",
        type=int,
        choices=(1, 2),
        default=default_of(ModelOptions, "last_stride"),
        help="ResNet layer4 stride (default 1)",
    )
    model.add_argument(
        "--head",
        choices=HEAD_NAMES,
        default=default_of(ModelOptions, "head"),
        help="classifier head: reid (the PTL paper's three FC layers, our reading), rolling_back (the "
        "rolling-back paper's 512-D FC, BN, leaky ReLU, FC), bnneck (BatchNorm + bias-free classifier, retrieval "
        "on the normalised feature; the strong baseline), bnneck_pre (retrieval on the feature before the "
        "BatchNorm) or cifar (two linear layers) (default: reid, cifar for classification)",
    )
    model.add_argument(
        "--head-init",
        choices=HEAD_INITS,
        default=default_of(ModelOptions, "head_init"),
        help="initialisation of the head's layers: torch (PyTorch's default) or he (He et al. 2015); not MGN "
        "(default: %(default)s)",
    )
    model.add_argument(
        "--mgn-reductions",
        choices=MGN_REDUCTIONS,
        default=default_of(ModelOptions, "mgn_reductions"),
        help="MGN: one 1x1 reduction per piece (separate, the MGN paper) or one for all 8 (shared, the "
        "reproduction the PTL paper ran) (default: %(default)s)",
    )
    model.add_argument(
        "--dropout",
        type=rate(0.0, below=1.0),
        default=None,
        help="dropout of the head (default: 0.5 for ReID, none for MGN)",
    )
    model.add_argument(
        "--init-from", default=None, help="start from a ptl checkpoint's weights with a new head (chained fine-tuning)"
    )
    ablation = parser.add_argument_group("PTL ablations (not in the papers; the defaults are the papers' network)")
    ablation.add_argument(
        "--side-width",
        type=rate(exclusive_minimum=True),
        default=default_of(ModelOptions, "side_width"),
        help="scale of every BConv-Cell and fuse width of a ptl_* network, e.g. 0.5 (default: %(default)s)",
    )
    ablation.add_argument(
        "--cell-state",
        choices=STATE_MODES,
        default=default_of(ModelOptions, "cell_state"),
        help="the cells' state in training: carry it from batch to batch (the papers), reset it before every "
        "batch, or zero (c_prev always 0) (default: %(default)s)",
    )


def add_optim_options(parser):
    """``ptl train``: SGD-M, schedule and loss."""
    from ..runs.spec import LossOptions
    from ..train.config import OPTIMIZERS, TrainConfig
    from ..train.losses import ReIDLoss

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
        "--optimizer",
        choices=OPTIMIZERS,
        default=default_of(TrainConfig, "optimizer"),
        help="sgd (the papers'), adam (L2 weight decay; the strong ReID baseline, with --lr 3.5e-4) or adamw "
        "(decoupled weight decay) (default: %(default)s)",
    )
    for beta in ("adam_beta1", "adam_beta2"):
        optim.add_argument(
            f"--{beta.replace('_', '-')}",
            type=rate(0.0, below=1.0),
            default=default_of(TrainConfig, beta),
            help=f"Adam/AdamW {beta[-5:]} in [0, 1) (default: %(default)s)",
        )
    optim.add_argument(
        "--warmup-epochs",
        type=count(0),
        default=default_of(TrainConfig, "warmup_epochs"),
        help="linear learning-rate warm-up over the first N epochs, 0 = off (strong baseline: 10) "
        "(default: %(default)s)",
    )
    optim.add_argument(
        "--warmup-factor",
        type=rate(exclusive_minimum=True, maximum=1.0),
        default=default_of(TrainConfig, "warmup_factor"),
        help="learning-rate factor at the first warm-up epoch, in (0, 1] (default: %(default)s)",
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
        default=default_of(LossOptions, "loss"),
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
