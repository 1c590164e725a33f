"""Write configs/paper/ (one file per entry of configs/paper_rows.toml), configs/extra/ and configs/README.md.

    python scripts/make_paper_configs.py

Each paper config carries its row's printed numbers, the paper's recipe as `ptl train` options, and a
`# departs:` comment for every setting the paper does not state or that `ptl train` cannot follow.
The rows file is the data; this script only lays it out. tests/test_configs.py checks the written files
against the rows file on its own terms (network, dataset, method, hyper-parameters, numbers).
"""

import os
import shutil

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs")

PAPERS = {
    "PTL": "PTL paper (Yu et al., Progressive Transfer Learning for Person Re-identification)",
    "rolling-back": "rolling-back paper (Ro et al., Backbone Can Not be Trained at Once, AAAI 2019)",
}
ARCH = {
    "ResNet-34": "resnet34",
    "ResNet-50": "resnet50",
    "ResNet-101": "resnet101",
    "DenseNet-161": "densenet161",
    "DenseNet-100": "densenet_bc100",
    "MGN": "mgn",
}
CHECKPOINTS = {
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet101": "resnet101-63fe2227.pth",
    "densenet161": "densenet161-8d451a50.pth",
    "mgn": "resnet50-0676ba61.pth",
}
CHAIN = {"Market-Duke": "market_duke", "Market": "market1501", "Duke": "dukemtmc_reid", "MSMT17": "msmt17"}

# --- recipes: the papers' settings as options, and what each file says about the ones the papers leave open

PTL_REID = {
    "epochs": 50,
    "lr": 0.01,
    "step_size": 10,
    "gamma": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "sampler": "random",
    "batch_size": 32,
    "erasing": 0.0,
    "pad": 0,
    "triplet_weight": 0.0,
    "flip": False,
}
PTL_REID_DEPARTS = [
    "momentum 0.9: the paper says SGD-M without a momentum value; 0.9 is the common value",
    "weight_decay 5e-4: the paper does not state the weight decay; 5e-4 is the common value",
    "batch 32 drawn uniformly (sampler random): the paper gives the batch size (Table II's footnote, for "
    "DenseNet-161; used here for every row), not how a batch is drawn; uniform shuffling is the usual choice "
    "for cross-entropy-only training",
    "horizontal flip in training: the paper names no augmentation; flip (the only one kept) is the common one",
    "head: the paper's classifier is three FC layers without sizes; ours is 1024 -> 512 -> identities with BN, "
    "ReLU and dropout 0.5, initialised by PyTorch's default (the paper states no initialisation)",
    "side stream widths: the paper gives none; ours are the authors' released MGN+PTL code's (docs/methods.md, "
    "parameter counts)",
    "evaluation: our evaluator with L2-normalised features in place of the Open-ReID / MSMT17 evaluation code "
    "the paper used (it does not say whether features are normalised)",
]
PTL_RESNET_DEPARTS = ["last_stride 2: the paper changes no stride, so the published ResNet-50's stride 2 is kept"]
PTL_RECIPE = (
    "recipe (section VI-B): ImageNet-pre-trained backbone, 256x128 input, SGD-M, lr 0.01 x0.1 every 10 epochs, "
    "50 epochs, cross-entropy, the 1x1 fusion's output as the test feature (no flipped-image sum)"
)

MGN_REID = {
    "epochs": 80,
    "lr": 0.01,
    "step_size": 40,
    "gamma": 0.1,
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "erasing": 0.0,
    "pad": 0,
    "mgn_reductions": "shared",
}
MGN_RECIPE_LINE = (
    "recipe: the PTL paper follows MGN's own setting ([12], Wang et al. 2018): 384x128 input, P x K = 4 x 4, "
    "cross-entropy on the 8 classifiers + triplet (margin 1.2) on the 3 global features, SGD momentum 0.9, "
    "weight decay 5e-4, lr 0.01 -> 1e-3 at epoch 40 -> 1e-4 at epoch 60, 80 epochs, flip only; it ran the "
    "public reproduction github.com/GNAYUOHZ/ReID-MGN, which shares one 1x1 reduction between the 8 pieces "
    "(mgn_reductions = shared; with it MGN has the 66m parameters the paper prints)"
)
MGN_DEPARTS = [
    "lr: MGN's second step (1e-4 from epoch 60) is not possible with ptl train's one step_size; epochs 60-79 "
    "run at 1e-3",
]

CIFAR = {
    "epochs": 300,
    "batch_size": 64,
    "lr": 0.1,
    "step_size": 150,
    "gamma": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 0.0001,
}
CIFAR_DEPARTS = [
    "the PTL paper gives no CIFAR recipe; this file uses DenseNet's (Huang et al. 2017): batch 64, SGD with "
    "Nesterov momentum 0.9, lr 0.1, weight decay 1e-4, 300 epochs",
    "DenseNet's second lr step (x0.1 at epoch 225) is not possible with one step_size: epochs 225-299 run at 0.01",
    "'DenseNet-100' is read as DenseNet-BC-100 (growth 12); the paper names neither the growth rate nor BC",
    "trained from random weights (the paper does not say; DenseNet trains CIFAR from scratch)",
    "no dropout in the columns without augmentation (DenseNet uses 0.2 there; ptl train has no dropout option "
    "inside the backbone)",
]

RB = {
    "height": 288,
    "width": 144,
    "sampler": "random",
    "batch_size": 32,
    "erasing": 0.0,
    "pad": 0,
    "head": "rolling_back",
    "head_init": "he",
    "last_stride": 2,
    "lr": 0.01,
    "head_lr": 0.1,
    "gamma": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 0.0005,
    "triplet_weight": 0.0,
    "flip": True,
    "normalize": False,
}
RB_RECIPE = (
    "recipe (Implementation detail): 288x144 input, batch 32, horizontal flip only, head 512-D FC + BN + leaky ReLU "
    "+ FC (He-initialised), lr 0.01 backbone / 0.1 classifier, x0.1 at epoch 20 of every 40-epoch period, SGD "
    "with Nesterov momentum 0.9, weight decay 5e-4; at each roll-back the momentum is reset, rolled-back blocks "
    "restart at 0.01, kept blocks at 0.001; test feature = GAP feature + the flipped image's, squared L2 distance"
)
RB_DEPARTS = [
    "batch 32 drawn uniformly (sampler random): the paper gives the batch size, not how a batch is drawn; "
    "uniform shuffling is the usual choice for cross-entropy-only training",
    "last_stride 2: the paper uses the published ResNet and changes no stride",
    "head learning rate in periods >= 2: the paper does not give it (its FC is not rolled back); ours restarts "
    "the head at lr 0.01 like the rolled-back blocks",
]
RB_PERIODS = {"rollback_periods": None, "period_epochs": 40, "period_decay_epoch": 20, "kept_lr": 0.001}


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def run_folder(config):
    return "runs/" + config[: -len(".toml")]


def chain_of(listed):
    """``"Duke to Market to MSMT17"`` -> ``["dukemtmc_reid", "market1501", "msmt17"]``."""
    return [CHAIN[step.strip()] for step in listed.split(" to ")]


def cite(row):
    text = f"{PAPERS[row['paper']]}, Table {row['table']}, row {row['row']}, column {row['column']}"
    hyper = row.get("hyper", {})
    if hyper:
        text += " (" + ", ".join(f"{k} {v}" for k, v in hyper.items()) + ")"
    return text


def paper_numbers(row):
    numbers = {}
    for key in ("mAP", "rank1", "rank5", "rank10"):
        if key in row:
            numbers[key] = float(row[key])
    if "top1_error" in row:
        numbers["top1_error"] = float(row["top1_error"].rstrip("%"))
    if "params" in row:
        numbers["parameters"] = int(row["params"].rstrip("m")) * 1_000_000
    return numbers


class Config:
    """One file: header comments, options (in order) and an optional [paper] table."""

    def __init__(self, path, title):
        self.path, self.lines, self.options, self.paper = path, [f"# {title}"], {}, None

    def say(self, *lines):
        self.lines += [f"# {line}" for line in lines]

    def departs(self, *lines):
        self.lines += [f"# departs: {line}" for line in lines]

    def set(self, **options):
        self.options.update(options)

    def write(self):
        text = "\n".join(self.lines) + "\n\n"
        text += "".join(f"{k} = {toml_value(v)}\n" for k, v in self.options.items() if v is not None)
        if self.paper:
            text += "\n[paper]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in self.paper.items())
        full = os.path.join(CONFIGS, self.path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as fh:
            fh.write(text)


def ptl_config(row, rows_by_config):
    cfg = Config(row["config"], cite(row))
    base = ARCH[row["backbone"]]
    hyper = row.get("hyper", {})
    numbers = paper_numbers(row)
    paper = {"source": cite(row), **numbers}
    if row["table"] == "VII":
        arch = {"fine-tune": base, "ptl": f"ptl_{base}", "ptl-v2": f"ptl_v2_{base}"}[row["method"]]
        cfg.say(
            "run: ptl train --config THIS --root DATA (the folder holding the CIFAR python batches)",
            "'+' columns use standard augmentation (pad 4, random crop, flip); the others none",
        )
        cfg.departs(*CIFAR_DEPARTS)
        cfg.set(dataset=row["dataset"], arch=arch, augment=row["column"].endswith("+"), **CIFAR)
        cfg.set(out=run_folder(row["config"]))
        cfg.paper = paper
        return cfg
    if base == "mgn":
        arch = "ptl_mgn" if row["method"] == "ptl" else "mgn"
        cfg.say(f"run: ptl train --config THIS --root DATA --pretrained {CHECKPOINTS['mgn']}", MGN_RECIPE_LINE)
        cfg.departs(*MGN_DEPARTS)
        cfg.set(dataset=row["dataset"], arch=arch, **MGN_REID, out=run_folder(row["config"]))
        cfg.paper = {**paper, "pretrained": CHECKPOINTS["mgn"]}
        return cfg
    arch = f"ptl_{base}" if row["method"] == "ptl" else base
    options = {"dataset": row["dataset"], "arch": arch, **PTL_REID}
    departs = list(PTL_REID_DEPARTS)
    if base.startswith("resnet"):
        options["last_stride"] = 2
        departs += PTL_RESNET_DEPARTS
    if hyper.get("batch") == "90":
        options.update(batch_size=90)
        departs[2] = departs[2].replace("batch 32", "batch 90")
    start = f"--pretrained {CHECKPOINTS[base]}"
    paper["pretrained"] = CHECKPOINTS[base]
    if "list" in hyper:
        steps = chain_of(hyper["list"])
        if row["method"] != "std":
            options.pop("dataset")
            options["chain"] = ",".join(steps)
            cfg.say(
                f"chained fine-tuning {hyper['list']}: one full run per dataset (each from the previous one's "
                "last.pt, a new head), the numbers are the last dataset's",
                "run: ptl train --config THIS --root PARENT " + start + " (PARENT holds the datasets' folders)",
            )
            departs.append(
                "every chain step uses the single-dataset recipe (50 epochs, steps every 10): the paper gives no "
                "per-step schedule"
            )
        else:
            teacher, student, how = std_chain_sources(row, steps, rows_by_config)
            options.update(teacher=teacher, std_lambda=0.8, init_from=student)
            start = ""
            paper.pop("pretrained")
            cfg.say(
                f"STD after chained fine-tuning {hyper['list']}: {how}",
                "run: ptl train --config THIS --root DATA (after the runs named by init_from and teacher)",
            )
            departs.append(
                "how STD meets a chain is our reading: the paper says only that a DenseNet-161 is trained with STD "
                "(section VI-G); the student continues the plain DenseNet-161 chain up to the last dataset and "
                "learns the last one with STD from the DenseNet-161+PTL chain's final network"
            )
    elif row["method"] == "std":
        std_lambda = float(hyper.get("lambda", "0.8"))
        if row["table"] == "VI":
            teacher = run_folder("paper/ptl/table6_std_lambda/densenet161_ptl_market_msmt17.toml")
            teacher += "/2_msmt17/best.pt"
            student = run_folder("paper/ptl/table2_market1501/densenet161.toml") + "/last.pt"
            options.update(teacher=teacher, std_lambda=std_lambda, init_from=student)
            start = ""
            paper.pop("pretrained")
            cfg.say(
                "STD (section VI-H): teacher DenseNet-161+PTL transferred Market-1501 -> MSMT17 (this table's first "
                "row), student a DenseNet-161 already fine-tuned on Market-1501 (Table II's DenseNet-161 row)",
                "run: ptl train --config THIS --root MSMT17_DATA (after those two runs)",
            )
            if std_lambda == 0:
                paper["note"] = (
                    "lambda 0: plain cross-entropy fine-tuning of the student on MSMT17 (the table's footnote); the "
                    "printed numbers equal Table I's DenseNet-161 row, which starts from ImageNet"
                )
        else:
            ptl_row = row["config"].replace("_ptl_std.toml", "_ptl.toml")
            options.update(teacher=run_folder(ptl_row) + "/best.pt", std_lambda=std_lambda)
            cfg.say(
                f"STD (section IV, lambda 0.8 as section VI-B sets it): student DenseNet-161 from ImageNet, teacher "
                f"this table's DenseNet-161+PTL row ({ptl_row})",
                f"run: ptl train --config THIS --root DATA {start} (after the teacher's run)",
            )
        departs.append("STD's feature: the teacher's and the student's test features (the 1x1 fusion / GAP output)")
    else:
        cfg.say(f"run: ptl train --config THIS --root DATA {start}")
    cfg.say(PTL_RECIPE)
    cfg.departs(*departs)
    cfg.set(**options, out=run_folder(row["config"]))
    cfg.paper = paper
    return cfg


def std_chain_sources(row, steps, rows_by_config):
    """(teacher checkpoint, student start, description) of a Table V STD row."""
    names = "_".join(
        {"market_duke": "marketduke", "market1501": "market", "dukemtmc_reid": "duke"}.get(s, s) for s in steps
    )
    last = f"{len(steps)}_{steps[-1]}"
    before = f"{len(steps) - 1}_{steps[-2]}"
    ptl_row = f"paper/ptl/table5_chains/densenet161_ptl_{names}.toml"
    if ptl_row in rows_by_config:
        teacher = run_folder(ptl_row) + f"/{last}/best.pt"
    else:
        teacher = run_folder(f"extra/ptl/teachers/densenet161_ptl_{names}.toml") + f"/{last}/best.pt"
    plain_row = f"paper/ptl/table5_chains/densenet161_{names}.toml"
    if plain_row in rows_by_config:
        student = run_folder(plain_row) + f"/{before}/last.pt"
    elif len(steps) == 2:
        student = run_folder(f"extra/ptl/students/densenet161_{steps[0]}.toml") + "/last.pt"
    else:
        prefix = "_".join(names.split("_")[:-1])
        student = run_folder(f"extra/ptl/students/densenet161_{prefix}.toml") + f"/{before}/last.pt"
    how = f"student DenseNet-161 from {student}, teacher DenseNet-161+PTL {teacher}, lambda 0.8"
    return teacher, student, how


def rb_config(row):
    cfg = Config(row["config"], cite(row))
    arch = ARCH[row["backbone"]]
    hyper = row.get("hyper", {})
    options = {"dataset": row["dataset"], "arch": arch, **RB}
    if row["method"] == "fine-tune":  # period 1 / the baseline: one 40-epoch period
        options.update(epochs=40, step_size=20)
        cfg.say("the baseline: one 40-epoch fine-tuning (period 1, nothing rolled back)")
    elif "remain" in hyper:
        block = int(hyper["remain"].removeprefix("Block"))
        options.update({**RB_PERIODS, "rollback_periods": 2, "rollback_keep": block})
        cfg.say(
            f"after the 40-epoch baseline every block but Block{block} is rolled back and the network trains "
            "another 40-epoch period (Block1 = conv1+bn1, Block2..5 = layer1..layer4)"
        )
        cfg.departs(
            f"rates of Table 1's second period are not given; Table 2's rule is used: Block{block} (kept) at 0.001, "
            "the rolled-back blocks and the head at 0.01"
        )
    else:
        periods = int(hyper.get("period", "4"))
        options.update({**RB_PERIODS, "rollback_periods": periods})
        cfg.say(f"{periods} periods of 40 epochs ({periods - 1} roll-backs), each with its own schedule")
        if "period" not in hyper:
            cfg.departs(
                "periods: Table 4 does not say which period it reports; 4 (the three roll-backs of the "
                "Implementation detail). Its ResNet-101 DukeMTMC numbers (70.2, 85.2) are Table 3's period 3"
            )
    cfg.say(f"run: ptl train --config THIS --root DATA --pretrained {CHECKPOINTS[arch]}", RB_RECIPE)
    cfg.departs(*RB_DEPARTS)
    cfg.set(**options, out=run_folder(row["config"]))
    cfg.paper = {"source": cite(row), **paper_numbers(row), "pretrained": CHECKPOINTS[arch]}
    return cfg


def extras():
    """Configs of runs the papers do not report: prerequisites of paper rows, controls and other datasets."""
    out = []
    for names, steps in (
        ("marketduke_msmt17", ["market_duke", "msmt17"]),
        ("market_duke_msmt17", ["market1501", "dukemtmc_reid", "msmt17"]),
        ("duke_market_msmt17", ["dukemtmc_reid", "market1501", "msmt17"]),
    ):
        cfg = Config(f"extra/ptl/teachers/densenet161_ptl_{names}.toml", "Not a row of either paper.")
        cfg.say(
            "The STD teacher of a PTL-paper Table V row: DenseNet-161+PTL fine-tuned along the chain; the table "
            "prints no numbers for it.",
            "run: ptl train --config THIS --root PARENT --pretrained densenet161-8d451a50.pth",
        )
        opts = {k: v for k, v in PTL_REID.items()}
        cfg.set(arch="ptl_densenet161", chain=",".join(steps), **opts, out=run_folder(cfg.path))
        out.append(cfg)
    for name, options, what in (
        ("densenet161_dukemtmc_reid", {"dataset": "dukemtmc_reid"}, "DenseNet-161 fine-tuned on DukeMTMC-reID"),
        ("densenet161_duke_msmt17", {"chain": "dukemtmc_reid,msmt17"}, "DenseNet-161 fine-tuned Duke -> MSMT17"),
    ):
        cfg = Config(f"extra/ptl/students/{name}.toml", "Not a row of either paper.")
        cfg.say(
            f"The STD student's start of a PTL-paper Table V row: {what}.",
            "run: ptl train --config THIS --root DATA_OR_PARENT --pretrained densenet161-8d451a50.pth",
        )
        cfg.set(arch="densenet161", **options, **PTL_REID, out=run_folder(cfg.path))
        out.append(cfg)
    for arch in ("resnet50", "ptl_resnet50"):
        for dataset in ("market1501", "dukemtmc_reid", "cuhk03_labeled", "cuhk03_detected"):
            cfg = Config(f"extra/ptl/other_datasets/{arch}_{dataset}.toml", "Not a row of either paper.")
            cfg.say(
                "The PTL paper's ReID recipe on a dataset it reports no ResNet-50 numbers for.",
                "run: ptl train --config THIS --root DATA --pretrained resnet50-0676ba61.pth",
            )
            cfg.set(dataset=dataset, arch=arch, last_stride=2, **PTL_REID, out=run_folder(cfg.path))
            out.append(cfg)
    for arch in ("densenet_bc100", "ptl_densenet_bc100", "ptl_v2_densenet_bc100"):
        cfg = Config(f"extra/ptl/cifar10_plus/{arch}.toml", "Not a row of either paper.")
        cfg.say("CIFAR-10 with standard augmentation (Table VII has CIFAR-10 without it), the CIFAR rows' recipe.")
        cfg.set(dataset="cifar10", arch=arch, augment=True, **CIFAR, out=run_folder(cfg.path))
        out.append(cfg)
    for dataset in ("market1501", "dukemtmc_reid"):
        cfg = Config(f"extra/rolling_back/resnet50_{dataset}_base_cy.toml", "Not a row of either paper.")
        cfg.say(
            "The rolling-back paper's Figure-4 control 'base_cy': the Table 2 recipe with the same four 40-epoch "
            "periods, fresh optimizers and learning-rate restarts, nothing rolled back. Compare with "
            f"paper/rolling_back/table2_resnet50/{'market1501' if dataset == 'market1501' else 'dukemtmc'}_period4"
            ".toml to tell rolling back from training longer (the figure prints base_cy's final mAP as "
            f"{'71.96' if dataset == 'market1501' else '59.64'}, a figure label, not a table row).",
            "run: ptl train --config THIS --root DATA --pretrained resnet50-0676ba61.pth",
        )
        cfg.set(
            dataset=dataset,
            arch="resnet50",
            **RB,
            **{**RB_PERIODS, "rollback_periods": 4},
            rollback_mode="base_cy",
            out=run_folder(cfg.path),
        )
        out.append(cfg)
    cfg = Config("extra/rolling_back/resnet50_market1501_equal_budget.toml", "Not a row of either paper.")
    cfg.say(
        "Rolling back within the baseline's 40 epochs: 4 periods of 10 (x0.1 at epoch 5 of each), the equal-budget "
        "comparison with paper/rolling_back/table2_resnet50/market1501_period1.toml. The paper gives every period "
        "its own 40 epochs (160 in all).",
        "run: ptl train --config THIS --root DATA --pretrained resnet50-0676ba61.pth",
    )
    cfg.set(
        dataset="market1501",
        arch="resnet50",
        **RB,
        epochs=40,
        rollback_periods=4,
        rollback_budget="shared",
        kept_lr=0.001,
        out=run_folder(cfg.path),
    )
    out.append(cfg)
    return out


def epoch_cost(name):
    """The H200 time of one epoch of config ``name`` (per dataset for a chain), or "not measured"."""
    from ptl_ext.cli import parse_args
    from ptl_ext.step_time import epoch_seconds

    args = parse_args(["train", "--config", os.path.join(CONFIGS, name)])
    batch = args.p * args.k if args.task == "reid" and args.sampler == "pk" else args.batch_size
    datasets = args.chain.split(",") if args.chain else [args.dataset]
    costs = [epoch_seconds(args.arch, batch, args.height, args.width, dataset) for dataset in datasets]
    if any(cost is None for cost in costs):
        return "not measured"
    spans = [f"{low:.0f} s" if round(low) == round(high) else f"{low:.0f}-{high:.0f} s" for _, low, high in costs]
    return " / ".join(spans) + (" + the teacher's forward" if args.teacher else "")


def readme(rows, extra):
    lines = [
        "# Paper-reproduction configs",
        "",
        "`paper_rows.toml` holds every results-table row of the two papers that `ptl train` can run, with the",
        "numbers as printed; its header lists the rows left out and why. `paper/` has one config per entry (one",
        "row of one table, one dataset column): it cites the row in its first line and in `[paper] source`,",
        "carries the printed numbers in `[paper]`, sets the paper's recipe as options and names each departure",
        "from the paper in a `# departs:` line (docs/methods.md collects them). `extra/` holds runs the papers do",
        "not report (prerequisites of STD rows, the rolling-back base_cy control, an equal-budget rolling back,",
        "other datasets); none of them carries paper numbers. Written by `python scripts/make_paper_configs.py`;",
        "`tests/test_configs.py` checks every file against the rows file.",
        "",
        "    ROW=configs/paper/ptl/table2_market1501/densenet161_ptl.toml",
        "    ptl train --config $ROW --dry-run      # the resolved settings and the H200 cost of an epoch",
        "    ptl train --config $ROW --root data/Market-1501-v15.09.15 --pretrained densenet161-8d451a50.pth",
        "",
        "Options on the command line win over the file (`--device cuda:1`, `--out DIR`). Run folders are relative",
        "to the working folder (`runs/paper/...`): STD rows read their teacher (and, in Tables V and VI, their",
        "student's start) from other rows' run folders, so run those first from the same folder. After a run,",
        "`OUT/paper.csv` puts our numbers beside the paper's.",
        "",
        "The last column is the time of one training epoch on one H200 (`ptl_ext/h200_step_ms.toml`, bf16 steps",
        "only, evaluation not counted; chains: per dataset), also printed by `--dry-run`.",
        "",
        "| config | paper, table | row | column | printed | H200 epoch |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        printed = ", ".join(
            f"{key} {row[key]}" for key in ("mAP", "rank1", "rank5", "rank10", "top1_error", "params") if key in row
        )
        hyper = " (" + ", ".join(f"{k} {v}" for k, v in row["hyper"].items()) + ")" if row.get("hyper") else ""
        lines.append(
            f"| `{row['config']}` | {row['paper']} {row['table']} | {row['row']}{hyper} | {row['column']} | {printed} "
            f"| {epoch_cost(row['config'])} |"
        )
    lines += ["", "Extra configs (not paper rows):", ""]
    lines += [f"- `{cfg.path}`" for cfg in extra]
    with open(os.path.join(CONFIGS, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def readme_rows(rows):
    """Rewrite the row table of README.md's "Reproducing the papers" between its two markers."""
    path = os.path.join(ROOT, "README.md")
    with open(path) as fh:
        text = fh.read()
    begin = text.index("<!-- paper rows:")
    begin = text.index("\n", begin) + 1
    end = text.index("<!-- /paper rows -->")
    lines = [
        "| paper, table | row | column | config (`configs/paper/...`) | paper's numbers | ours |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        printed = ", ".join(
            f"{key} {row[key]}" for key in ("mAP", "rank1", "rank5", "rank10", "top1_error", "params") if key in row
        )
        hyper = " (" + ", ".join(f"{k} {v}" for k, v in row["hyper"].items()) + ")" if row.get("hyper") else ""
        short = row["config"].removeprefix("paper/")
        lines.append(
            f"| {row['paper']} {row['table']} | {row['row']}{hyper} | {row['column']} | `{short}` | {printed} "
            "| not run |"
        )
    with open(path, "w") as fh:
        fh.write(text[:begin] + "\n".join(lines) + "\n" + text[end:])


def main():
    with open(os.path.join(CONFIGS, "paper_rows.toml"), "rb") as fh:
        rows = tomllib.load(fh)["row"]
    by_config = {row["config"]: row for row in rows}
    for folder in ("paper", "extra"):
        shutil.rmtree(os.path.join(CONFIGS, folder), ignore_errors=True)
    for row in rows:
        (ptl_config(row, by_config) if row["paper"] == "PTL" else rb_config(row)).write()
    extra = extras()
    for cfg in extra:
        cfg.write()
    readme(rows, extra)
    readme_rows(rows)


if __name__ == "__main__":
    main()
