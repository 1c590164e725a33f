"""Nothing trained is lost and no run is mixed: the used-folder rule, save-then-evaluate, best.pt before last.pt,
resume refusals that change nothing, disk-full saves, config checks and the divergence message."""

import errno
import os
import signal
import subprocess
import sys

import pytest
import torch
from torch import nn

from ptl_ext.data import build_dataloader
from ptl_ext.errors import (
    CheckpointError,
    DivergenceError,
    MethodMismatchError,
    ResumeMismatchError,
    RunFolderError,
    UserError,
)
from ptl_ext.train import Hook, RunFolder, TrainConfig, Trainer, load_checkpoint, save_checkpoint
from ptl_ext.train import checkpoint as checkpoint_module
from ptl_ext.train import trainer_files as trainer_module  # where the Trainer writes its checkpoints
from ptl_ext.train.metrics import read_csv


class Net(nn.Module):
    def __init__(self, classes=4):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.head = nn.Linear(8, classes)

    def forward(self, x, return_features=False):
        features = self.body(x).mean((2, 3))
        if return_features:
            return self.head(features), features
        return self.head(features) if self.training else features


class Scores:
    """An evaluator returning the given mAP values in turn; ``fail_at`` (1-based call) raises instead."""

    primary, higher_is_better = "mAP", True

    def __init__(self, values, fail_at=None, check_error=None):
        self.values, self.fail_at, self.check_error, self.calls = list(values), fail_at, check_error, 0

    def check(self):
        if self.check_error is not None:
            raise self.check_error

    def __call__(self, model, device="cpu", amp=False, info=None):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ValueError("no query has a valid match")
        return {"mAP": self.values[self.calls - 1]}


def make(out, epochs=2, evaluator=None, hooks=(), meta=None, **config):
    torch.manual_seed(0)
    images, labels = torch.randn(16, 3, 8, 8), torch.arange(16) % 4
    loader = build_dataloader(torch.utils.data.TensorDataset(images, labels), batch_size=8, shuffle=True, seed=0)
    settings = dict(epochs=epochs, lr=0.05, eval_every=1, out_dir=str(out), progress=False)
    return Trainer(
        Net(), loader, TrainConfig(**{**settings, **config}), evaluator=evaluator, hooks=hooks, device="cpu", meta=meta
    )


def weights(trainer):
    return {k: v.clone() for k, v in trainer.module.state_dict().items()}


# ---------------------------------------------------------------- 15.1: a used folder
def test_a_new_run_into_a_used_folder_is_refused_and_overwrite_replaces_it(tmp_path):
    make(tmp_path, epochs=2, evaluator=Scores([0.5, 0.6])).fit()
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    with pytest.raises(RunFolderError, match="already holds a run"):
        make(tmp_path, epochs=1, lr=0.001).fit()
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    make(tmp_path, epochs=1, lr=0.001, overwrite=True).fit()  # no evaluator: the old best.pt must not survive
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "last.pt", "metrics.csv"]
    assert load_checkpoint(tmp_path / "last.pt")["config"]["lr"] == 0.001


def test_a_trainer_is_refused_while_another_process_holds_its_folder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom ptl_ext.train import RunFolder\n"
            "folder = RunFolder(sys.argv[1]).acquire()\nprint('held', flush=True)\ntime.sleep(120)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        expected = f"run folder {tmp_path} is in use by another run \\(pid {holder.pid}\\)"
        with pytest.raises(RunFolderError, match=expected):
            make(tmp_path, epochs=1).fit()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert len(make(tmp_path, epochs=1).fit()) == 1  # the killed holder left no lock behind


def test_a_folder_opened_by_the_caller_is_used_and_kept(tmp_path):
    def trainer(folder, epochs):
        torch.manual_seed(0)
        made = make(tmp_path, epochs=epochs)
        return Trainer(made.module, made.train_loader, made.config, run_folder=folder, device="cpu")

    with RunFolder(tmp_path) as folder:  # what a command line opens first, before reading any data
        trainer(folder, 1).fit()
        assert folder.held  # the caller releases it
    with RunFolder(tmp_path, resume=True) as folder:
        with pytest.raises(ValueError, match="opened for a resume: call Trainer.resume before fit"):
            trainer(folder, 2).fit()
        resumed = trainer(folder, 2)
        resumed.resume(tmp_path / "last.pt")
        assert len(resumed.fit()) == 2
    with pytest.raises(ValueError, match="is not TrainConfig.out_dir"):
        trainer(RunFolder(tmp_path / "elsewhere"), 1)


# ---------------------------------------------------------------- 15.6: save first, then evaluate
def test_a_failing_evaluation_keeps_the_trained_epoch_and_resume_evaluates_it(tmp_path):
    full = make(tmp_path / "full", epochs=2, evaluator=Scores([0.5, 0.6]), save_every=0)
    full.fit()
    out = tmp_path / "run"
    broken = make(out, epochs=2, evaluator=Scores([0.5, 0.6], fail_at=2), save_every=0)
    with pytest.raises(ValueError, match="no query has a valid match"):
        broken.fit()
    saved = load_checkpoint(out / "last.pt")
    assert saved["epoch"] == 2 and saved["pending_eval"]  # the last epoch's training is on disk
    resumed = make(out, epochs=2, evaluator=Scores([0.6]), save_every=0)
    resumed.resume(out / "last.pt")
    history = resumed.fit()  # evaluates epoch 2, trains nothing more
    assert [row["mAP"] for row in history] == [0.5, 0.6]
    assert all(torch.equal(v, full.module.state_dict()[k]) for k, v in resumed.module.state_dict().items())
    assert [r["mAP"] for r in read_csv(out / "metrics.csv")] == [0.5, 0.6]
    assert load_checkpoint(out / "best.pt")["best"] == 0.6 and not load_checkpoint(out / "last.pt")["pending_eval"]


def test_evaluator_check_runs_before_the_first_epoch(tmp_path):
    trainer = make(tmp_path, evaluator=Scores([0.5], check_error=ValueError("query split: no valid query")))
    with pytest.raises(ValueError, match="no valid query"):
        trainer.fit()
    assert trainer.epoch == 0 and os.listdir(tmp_path) == []


# ---------------------------------------------------------------- 15.3: best.pt before last.pt
def test_a_crash_between_the_best_and_last_writes_loses_no_best(tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = make(out, epochs=3, evaluator=Scores([0.5, 0.7, 0.6]))
    trainer.run_epoch(0)
    real = trainer_module.save_checkpoint

    def crash_after_best(path, state, *copies):  # the kill window: best.pt written, last.pt not yet
        real(path, state)
        if copies:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(trainer_module, "save_checkpoint", crash_after_best)
    with pytest.raises(KeyboardInterrupt):
        trainer.run_epoch(1)
    monkeypatch.undo()
    assert load_checkpoint(out / "best.pt")["best"] == 0.7
    last = load_checkpoint(out / "last.pt")
    assert last["epoch"] == 2 and last["pending_eval"]  # the pre-evaluation save of epoch 2
    os.remove(out / "best.pt")  # even a lost best.pt comes back: the resume evaluates epoch 2 again
    resumed = make(out, epochs=3, evaluator=Scores([0.7, 0.6]))
    resumed.resume(out / "last.pt")
    resumed.fit()
    best = load_checkpoint(out / "best.pt")
    assert best["best"] == 0.7 and best["epoch"] == 2 and load_checkpoint(out / "last.pt")["best"] == 0.7


# ---------------------------------------------------------------- 15.4: resume with other options
def test_resume_with_other_settings_lists_each_and_changes_nothing(tmp_path):
    meta = {"arch": "net", "height": 8, "width": 8, "seed": 0, "root": "/data/a"}
    make(tmp_path, epochs=1, meta=meta).fit()
    other = make(tmp_path, epochs=3, lr=0.001, step_size=3, meta={**meta, "height": 16, "seed": 1, "root": "/b"})
    before = weights(other)
    with pytest.raises(ResumeMismatchError) as info:
        other.resume(tmp_path / "last.pt")
    message = str(info.value)
    for expected in (
        "lr: saved 0.05, given 0.001",
        "step_size: saved 10, given 3",
        "height: saved 8, given 16",
        "seed: saved 0, given 1",
    ):
        assert expected in message
    assert "root:" not in message and "epochs:" not in message  # the data folder may move, epochs may grow
    assert [name for name, _, _ in info.value.differences] == ["lr", "step_size", "height", "seed"]
    assert all(torch.equal(v, before[k]) for k, v in weights(other).items()) and other.epoch == 0
    grown = make(tmp_path, epochs=3, eval_every=2, save_every=2, progress=False, meta={**meta, "root": "/b"})
    grown.resume(tmp_path / "last.pt")
    assert grown.epoch == 1 and len(grown.fit()) == 3


def test_resume_with_fewer_epochs_than_trained_is_refused(tmp_path):
    make(tmp_path, epochs=2).fit()
    with pytest.raises(ResumeMismatchError, match="epochs: saved '>= 2 \\(epochs already trained\\)', given 1"):
        make(tmp_path, epochs=1).resume(tmp_path / "last.pt")


def test_a_refused_hook_state_changes_no_weight(tmp_path):
    class Counter(Hook):
        def __init__(self, strict):
            self.strict = strict

        def state_dict(self):
            return {"strict": self.strict}

        def load_state_dict(self, state):
            if state["strict"] != self.strict:
                raise ValueError("the counter was saved with another setting")

    make(tmp_path, epochs=1, hooks=[Counter(True)]).fit()
    for hooks, error in (([], "has 1 hook states \\(Counter\\), the trainer has 0"), ([Counter(False)], "another")):
        trainer = make(tmp_path, epochs=2, hooks=hooks)
        with torch.no_grad():
            trainer.module.head.weight.fill_(3.0)
        before = weights(trainer)
        with pytest.raises((CheckpointError, ValueError), match=error):
            trainer.resume(tmp_path / "last.pt")
        assert all(torch.equal(v, before[k]) for k, v in weights(trainer).items())
    assert os.listdir(tmp_path).count(".run.lock") == 0  # a refused resume releases the folder


def test_a_run_of_another_method_names_the_methods(tmp_path):
    from ptl_ext.train import TrainingMethod

    class Method(TrainingMethod):
        name = "rolling_back"

    trainer = make(tmp_path, epochs=1)
    trainer.method = Method()
    trainer.fit()
    with pytest.raises(MethodMismatchError, match="trained with rolling back, this run has no training method") as info:
        make(tmp_path, epochs=2).resume(tmp_path / "last.pt")
    assert (info.value.saved, info.value.given) == ("rolling_back", "plain")


# ---------------------------------------------------------------- disk full, config values, divergence
TORCH_FULL_DISK = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), TORCH_FULL_DISK])
def test_a_full_disk_names_the_file_and_keeps_the_old_checkpoint(tmp_path, monkeypatch, failure):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})
    before = path.read_bytes()

    def full_disk(obj, fh):
        fh.write(b"partial")
        raise failure

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    with pytest.raises(OSError, match=f"no space left on device while writing {path}") as info:
        save_checkpoint(path, {"epoch": 2})
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["last.pt"]


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("lr", float("nan"), "TrainConfig.lr must be a finite number"),
        ("lr", float("inf"), "TrainConfig.lr must be a finite number"),
        ("head_lr", -1.0, "TrainConfig.head_lr must be >= 0.0"),
        ("momentum", 2.0, "TrainConfig.momentum must be in \\[0, 1\\)"),
        ("momentum", 1.0, "TrainConfig.momentum must be in \\[0, 1\\)"),
        ("epochs", True, "TrainConfig.epochs must be an integer"),
        ("gamma", "0.1", "TrainConfig.gamma must be a number"),
        ("amp", "false", "TrainConfig.amp must be true or false"),
        ("overwrite", 1, "TrainConfig.overwrite must be true or false"),
        ("eval_every", -1, "TrainConfig.eval_every must be an integer >= 0"),
    ],
)
def test_config_values_are_checked(name, value, error):
    with pytest.raises((ValueError, TypeError), match=error):
        TrainConfig(**{name: value})


def test_divergence_says_what_to_do(tmp_path):
    trainer = make(tmp_path, epochs=1, lr=1e30)
    with pytest.raises(
        DivergenceError, match="training diverged: the loss is .* at epoch 1, step .*lower the learning rate"
    ) as info:
        trainer.fit()
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, UserError)
