"""Parameter counts of MGN, MGN+PTL and the CIFAR networks (DenseNet-BC-100 and its PTL / PTL-v2 versions),
and ours beside the PTL paper's printed counts (Table I, MSMT17; MGN on Market-1501).

    python benchmarks/param_counts.py

Prints a Markdown table (the one in BENCHMARKS.md) and the released MGN+PTL code's layout for
comparison: that code shares one reduction between the 8 pieces and its fuse convolutions have biases.
"""

import warnings

from ptl_ext.models import MGN, MGNPTL, create_model, densenet161, densenet_bc100, resnet50

warnings.filterwarnings("ignore", message="ptl_ext._C could not be imported")

REID_CLASSES = 751  # Market-1501 training identities
MSMT17_CLASSES = 1041  # MSMT17 training identities (the PTL paper's Table I)
CIFAR_CLASSES = 10


def count(*modules):
    """Parameters of ``modules`` together (``int``)."""
    return sum(p.numel() for m in modules for p in m.parameters())


def mgn_rows():
    """``(name, total, breakdown)`` for MGN, MGN+PTL and MGN+PTL-v2 at 751 classes."""
    rows = []
    for name, model in (
        ("MGN", MGN(REID_CLASSES)),
        ("MGN+PTL", MGNPTL(REID_CLASSES)),
        ("MGN+PTL-v2", MGNPTL(REID_CLASSES, v2=True)),
    ):
        parts = {
            "trunk (stem..layer3[0])": count(model.stages),
            "3 branches (layer3[1:], layer4)": count(model.branches),
            "8 reductions": count(model.reductions),
            "8 classifiers": count(model.head),
        }
        if isinstance(model, MGNPTL):
            parts["side stream (8 cells, 4 fuses)"] = count(model.cells, model.fuses, model.branch_cells)
        assert sum(parts.values()) == count(model)
        rows.append((name, count(model), parts))
    return rows


def released_layout(rows):
    """Counts of the released code's layout: one shared reduction, fuse convolutions with a bias; its
    ``MGN_PTL`` module also holds the complete torchvision ResNet-50 it copied the branches from."""
    mgn, ptl = rows[0][2], rows[1][2]
    shared_mgn = mgn["8 reductions"] // 8
    shared_ptl = ptl["8 reductions"] // 8 + 256  # its reduction conv has a bias
    fuse_biases = 64 + 128 + 256 + 512
    side = ptl["side stream (8 cells, 4 fuses)"] + fuse_biases
    base = mgn["trunk (stem..layer3[0])"] + mgn["3 branches (layer3[1:], layer4)"] + mgn["8 classifiers"]
    unused = count(resnet50()) - mgn["trunk (stem..layer3[0])"]  # its module also keeps the whole ResNet-50
    return {
        "MGN, one shared reduction": base + shared_mgn,
        "side stream with fuse biases": side,
        "MGN+PTL, one shared 2176→256 reduction": base + shared_ptl + side,
        "MGN_PTL module as released (+ its backbone's unused layer3[1:], layer4, fc)": base
        + shared_ptl
        + side
        + unused,
    }


def cifar_rows():
    """``(name, total)`` for DenseNet-BC-100 (its own linear classifier and the CLI's two-layer head) and
    its PTL and PTL-v2 versions, 10 classes."""
    rows = [("densenet_bc100, linear classifier (torchvision-style)", count(densenet_bc100(num_classes=CIFAR_CLASSES)))]
    for arch in ("densenet_bc100", "ptl_densenet_bc100", "ptl_v2_densenet_bc100"):
        model = create_model(arch, CIFAR_CLASSES, (32, 32), head="cifar")
        rows.append((f"{arch}, two-layer CIFAR head (CLI)", count(model)))
    return rows


def paper_rows():
    """``(network, printed, ours, ours + torchvision's unused ImageNet classifier or None, side stream or None)``
    for the counts the PTL paper prints ("m": millions, truncated)."""
    imagenet_fc = {"resnet50": count(resnet50().fc), "densenet161": count(densenet161().classifier)}
    rows = []
    for arch, printed, classes in (
        ("resnet50", "28m", MSMT17_CLASSES),
        ("ptl_resnet50", "35m", MSMT17_CLASSES),
        ("densenet161", "32m", MSMT17_CLASSES),
        ("ptl_densenet161", "42m", MSMT17_CLASSES),
    ):
        model = create_model(arch, classes)
        side = count(model.cells, model.fuses, model.final_fuse) if arch.startswith("ptl_") else None
        fc = imagenet_fc[arch.removeprefix("ptl_")]
        rows.append((f"{arch} ({classes} ids)", printed, count(model), count(model) + fc, side))
    for reductions in ("separate", "shared"):
        model = create_model("mgn", REID_CLASSES, mgn_reductions=reductions)
        rows.append((f"mgn, {reductions} reductions ({REID_CLASSES} ids)", "66m", count(model), None, None))
    return rows


def main():
    rows = mgn_rows()
    print(f"| network ({REID_CLASSES} classes) | parameters | breakdown |")
    print("|---|---:|---|")
    for name, total, parts in rows:
        print(f"| {name} | {total:,} | " + "; ".join(f"{k} {v:,}" for k, v in parts.items()) + " |")
    print(f"\nMGN+PTL − MGN: {rows[1][1] - rows[0][1]:,}; MGN+PTL-v2 − MGN: {rows[2][1] - rows[0][1]:,}")
    print("\nreleased code's layout (same modules, counted analytically):")
    for name, total in released_layout(rows).items():
        print(f"  {name}: {total:,}")
    print("\n| network | PTL paper | ours | ours + ImageNet classifier | side stream |")
    print("|---|---:|---:|---:|---:|")
    for name, printed, ours, with_fc, side in paper_rows():
        cells = [f"{n:,}" if n is not None else "-" for n in (ours, with_fc, side)]
        print(f"| {name} | {printed} | " + " | ".join(cells) + " |")
    print(f"\n| network ({CIFAR_CLASSES} classes) | parameters |")
    print("|---|---:|")
    for name, total in cifar_rows():
        print(f"| {name} | {total:,} |")


if __name__ == "__main__":
    main()
