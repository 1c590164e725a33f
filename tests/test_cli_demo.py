"""ptl pretrain and ptl demo: the pre-trained backbone, its cache, the transfer rows, seeds and statistics."""

import math
import os

import pytest
import torch

from ptl_ext.cli import main, parse_args
from ptl_ext.experiments.demo_data import pretrained_backbone, target_dataset
from ptl_ext.experiments.demo_stats import mean_sd, paired_interval, read_seed_csv, t_quantile
from ptl_ext.models import create_model, resnet34

TINY = [
    "--train-ids",
    "4",
    "--test-ids",
    "3",
    "--images-per-cam",
    "2",
    "--source-ids",
    "6",
    "--source-images-per-cam",
    "2",
    "--pretrain-epochs",
    "1",
    "--height",
    "32",
    "--width",
    "16",
    "--no-progress",
]


def test_student_t_quantiles_and_paired_interval():
    # textbook values of t(0.975, df)
    for df, value in ((1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)):
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-6)
    mean, sd, low, high = paired_interval([0.5, 0.7, 0.6], [0.4, 0.5, 0.6])
    assert mean == pytest.approx(0.1) and sd == pytest.approx(0.1)
    assert (low, high) == pytest.approx(
        (0.1 - 4.3027 * 0.1 / math.sqrt(3), 0.1 + 4.3027 * 0.1 / math.sqrt(3)), abs=1e-5
    )
    with pytest.raises(ValueError, match="baseline"):
        paired_interval([1.0], [1.0, 2.0])


def test_pretrained_backbone_loads_into_both_networks_and_is_cached(tmp_path):
    args = parse_args(["demo", *TINY])
    cache = str(tmp_path / "cache")
    path, reused = pretrained_backbone(args, cache)
    assert not reused
    state = torch.load(path, weights_only=True)
    assert list(state) == list(resnet34().state_dict()) and state["fc.weight"].shape[0] == 6  # 6 source ids
    for arch in ("resnet34", "ptl_resnet34"):
        model = create_model(arch, 4, (32, 16), pretrained=path)
        own = model.state_dict()
        assert torch.equal(own["stages.0.conv1.weight"], state["conv1.weight"])
        assert torch.equal(own["stages.4.2.bn2.running_mean"], state["layer4.2.bn2.running_mean"])
    stamp = os.stat(path).st_mtime_ns
    assert pretrained_backbone(args, cache) == (path, True) and os.stat(path).st_mtime_ns == stamp
    changed = parse_args(["demo", *TINY, "--pretrain-lr", "0.02"])
    other, reused = pretrained_backbone(changed, cache)
    assert not reused and other != path and os.path.exists(path)
    # the target set is cached the same way, and is another domain than the source
    data, reused = target_dataset(args, cache)
    assert not reused and target_dataset(args, cache) == (data, True)
    assert target_dataset(parse_args(["demo", *TINY, "--seed", "1"]), cache)[0] != data


def test_demo_rows_start_from_the_pretrained_backbone_with_equal_budgets_and_seed_statistics(
    tmp_path, monkeypatch, capsys
):
    from ptl_ext.train import RollbackHook, Trainer

    started = []
    fit = Trainer.fit

    def recording_fit(self):
        snapshots = [h.pretrained for h in self.hooks if isinstance(h, RollbackHook)]
        started.append((self.config.out_dir, {k: v.clone() for k, v in self.module.state_dict().items()}, snapshots))
        history = fit(self)
        started[-1] += (len(history), {k: v.clone() for k, v in self.module.state_dict().items()})
        return history

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    out = tmp_path / "demo"
    argv = [
        "demo",
        *TINY,
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache"),
        "--epochs",
        "2",
        "--rollback-periods",
        "2",
        "--seeds",
        "2",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "budget: 2 epochs per fine-tuning row (rolling back 2 periods x 1)" in printed
    pretrained = {
        f"stages.{i}.{k}": v
        for i, stage in enumerate(
            resnet34(pretrained=next((tmp_path / "cache").glob("pretrained-*/backbone.pth"))).stages()
        )
        for k, v in stage.state_dict().items()
    }
    assert "pretrained-" in started[0][0]  # the pre-training run comes first, into the cache
    assert len(started) == 9  # then 4 trained rows x 2 seeds
    finetuned_end = None
    for folder, before, snapshots, epochs, after in started[1:]:
        assert epochs == 2, folder  # the same budget for every row
        for key, value in pretrained.items():
            assert torch.equal(before[key], value), (folder, key)
        if "finetuned" in folder:
            finetuned_end = after
        if "rollback" in folder:
            assert len(snapshots) == 1
            for key, value in pretrained.items():  # the snapshot rolled back to: pre-trained, not fine-tuned
                assert torch.equal(snapshots[0][key], value), key
            assert not torch.equal(snapshots[0]["stages.4.0.conv1.weight"], finetuned_end["stages.4.0.conv1.weight"])
    from ptl_ext.train.metrics import read_csv

    periods = read_csv(out / "seed1" / "rollback_resnet34" / "metrics.csv")
    assert [r["rollback"] for r in periods] == [None, 2]
    # statistics recomputed from the per-seed CSV
    records = read_seed_csv(out / "seeds.csv")
    assert sorted({r["seed"] for r in records}) == [0, 1]
    names = ["direct transfer", "fine-tuned", "PTL", "STD", "rolling back"]
    assert list(dict.fromkeys(r["row"] for r in records)) == names
    import csv

    with open(out / "summary.csv") as fh:
        summary = {row["row"]: row for row in csv.DictReader(fh)}
    base = {r["seed"]: r for r in records if r["row"] == "fine-tuned"}
    for name in names:
        mine = {r["seed"]: r for r in records if r["row"] == name}
        for metric in ("mAP", "rank1", "mINP"):
            mean, sd = mean_sd([mine[s][metric] for s in (0, 1)])
            assert float(summary[name][f"{metric}_mean"]) == pytest.approx(mean, abs=1e-9)
            assert float(summary[name][f"{metric}_sd"]) == pytest.approx(sd, abs=1e-9)
        if name != "fine-tuned":
            diffs = [mine[s]["mAP"] - base[s]["mAP"] for s in (0, 1)]
            mean, sd = mean_sd(diffs)
            half = 12.7062047 * sd / math.sqrt(2)  # t(0.975, 1)
            assert float(summary[name]["d_mAP_mean"]) == pytest.approx(mean, abs=1e-9)
            assert float(summary[name]["d_mAP_low"]) == pytest.approx(mean - half, abs=1e-6)
            assert float(summary[name]["d_mAP_high"]) == pytest.approx(mean + half, abs=1e-6)
            assert f"{100 * mean:+.1f} [" in printed
    assert (out / "map_curves.png").stat().st_size > 0
    assert not list(out.rglob("*.pt"))  # checkpoints removed once a seed is done


def test_demo_option_errors(capsys):
    assert main(["demo", "--epochs", "5", "--rollback-periods", "2"]) == 2
    assert "multiple of --rollback-periods" in capsys.readouterr().err
    assert main(["demo", "--source-ids", "8", "--train-ids", "8"]) == 2
    assert "--source-ids 8 must exceed" in capsys.readouterr().err


def test_bn_input_shift_probe_of_a_ptl_network():
    from ptl_ext.experiments.demo_probe import bn_input_shift
    from ptl_ext.nn import accumulate_eval_states

    torch.manual_seed(0)
    model = create_model("ptl_resnet34", 3, (32, 16), dropout=0.0)
    images = [torch.rand(4, 3, 32, 16) for _ in range(3)]
    model.train()
    with torch.no_grad():  # running statistics made with carried states
        for _ in range(20):
            for x in images:
                model(x)
    loader = [(x,) for x in images]
    zero = bn_input_shift(model, loader)
    assert set(zero) == {"fuse0", "fuse1", "fuse2", "fuse3", "final_fuse"} and model.training
    accumulate_eval_states(model, images)
    state = bn_input_shift(model, loader)
    assert all(shift >= 0 and ratio > 0 for shift, ratio in zero.values())
    assert state != zero  # the eval state changes what the fuse layers see


def test_demo_ablations_run_the_ptl_variants_through_the_train_options(tmp_path, capsys):
    from ptl_ext.train import load_checkpoint

    out = tmp_path / "demo"
    argv = ["demo", *TINY, "--out", str(out), "--cache", str(tmp_path / "cache"), "--epochs", "2"]
    assert main([*argv, "--rollback-periods", "2", "--ablations", "--keep-checkpoints"]) == 0
    printed = capsys.readouterr().out
    records = {r["row"]: r for r in read_seed_csv(out / "seeds.csv")}
    ablations = ["PTL, state reset per batch", "PTL, c_prev always 0", "PTL, half-width side"]
    assert set(ablations + ["PTL, eval w/ train state*"]) <= set(records)
    assert "evaluated from the mean state the cells carried" in printed
    seed = out / "seed0"
    metas = {
        folder: load_checkpoint(seed / folder / "last.pt")["meta"]
        for folder in ("ptl_resnet34", "ptl_resnet34_reset", "ptl_resnet34_zero", "ptl_resnet34_narrow")
    }
    assert [(m["cell_state"], m["side_width"]) for m in metas.values()] == [
        ("carry", 1.0),
        ("reset", 1.0),
        ("zero", 1.0),
        ("carry", 0.5),
    ]
    # zeros before every batch and a c_prev that is always zero are the same arithmetic
    assert records["PTL, state reset per batch"]["mAP"] == records["PTL, c_prev always 0"]["mAP"]
    assert records["PTL, half-width side"]["parameters"] < records["PTL"]["parameters"]
    assert (out / "ptl_probe.csv").read_text().startswith("seed,layer,")
