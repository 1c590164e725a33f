"""Every user error of ``ptl`` is one line on stderr with exit code 2, and no run is overwritten or lost."""

import os

import pytest

from ptl_ext.cli import main
from ptl_ext.data import make_synthetic_market
from ptl_ext.train import RunFolder, load_checkpoint


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("errors") / "d"
    make_synthetic_market(
        root,
        num_train_ids=6,
        num_test_ids=4,
        num_cams=2,
        images_per_cam=2,
        num_distractors=2,
        num_junk=1,
        height=64,
        width=32,
        seed=0,
    )
    return root


def tiny_set(root, train_ids, test_ids, seed=0):
    """A 32×16 synthetic set with 2 cameras, 2 images per camera, no distractors or junk; returns ``root``."""
    make_synthetic_market(
        root,
        num_train_ids=train_ids,
        num_test_ids=test_ids,
        num_cams=2,
        images_per_cam=2,
        num_distractors=0,
        num_junk=0,
        height=32,
        width=16,
        seed=seed,
    )
    return root


def run(root, out, *extra):
    return main(
        [
            "train",
            "--dataset",
            "market1501",
            "--root",
            str(root),
            "--arch",
            "densenet_bc100",
            "--height",
            "64",
            "--width",
            "32",
            "--p",
            "4",
            "--k",
            "2",
            "--epochs",
            "1",
            "--no-progress",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--out",
            str(out),
            *extra,
        ]
    )


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.startswith("ptl: error: ") and err.count("\n") == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_folder_holding_a_run_is_not_overwritten(data, tmp_path, capsys):
    out = tmp_path / "r"
    assert run(data, out, "--epochs", "2") == 0
    before = (out / "last.pt").read_bytes()
    assert run(data, out, "--lr", "0.001") == 2
    one_line_error(capsys, str(out), "--resume", "--overwrite")
    assert (out / "last.pt").read_bytes() == before
    # a resume with other training options is refused, naming each option with both values
    assert run(data, out, "--epochs", "3", "--lr", "0.001", "--seed", "5", "--resume") == 2
    one_line_error(capsys, "--lr: saved 0.01, given 0.001", "--seed: saved 0, given 5")
    assert (out / "last.pt").read_bytes() == before
    # --overwrite replaces it; --epochs may grow on a resume
    assert run(data, out, "--overwrite", "--epochs", "1") == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    assert run(data, out, "--epochs", "2", "--resume") == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 2


def test_a_locked_folder_names_the_holder(data, tmp_path, capsys):
    out = tmp_path / "locked"
    with RunFolder(out):
        assert run(data, out) == 2
    one_line_error(capsys, str(os.getpid()))


def test_rolling_back_resumed_without_its_option_names_it(data, tmp_path, capsys):
    out = tmp_path / "rb"
    assert run(data, out, "--rollback-periods", "2", "--period-epochs", "1") == 0
    assert run(data, out, "--epochs", "3", "--resume") == 2
    one_line_error(capsys, "--rollback-periods")


@pytest.mark.parametrize(
    "case",
    [
        "under_a_file",
        "garbage_pretrained",
        "tiny_images",
        "init_and_pretrained",
        "one_identity",
        "no_valid_query",
        "corrupt_image_with_workers",
        "divergence",
    ],
)
def test_user_errors_are_one_line(data, tmp_path, capsys, case):
    out = tmp_path / "run"
    if case == "under_a_file":
        (tmp_path / "file").write_text("x")
        assert run(data, tmp_path / "file" / "run") == 2
        one_line_error(capsys, "file")
    elif case == "garbage_pretrained":
        garbage = tmp_path / "weights.pth"
        garbage.write_bytes(os.urandom(4096))
        assert run(data, out, "--pretrained", str(garbage)) == 2
        one_line_error(capsys, str(garbage))
    elif case == "tiny_images":
        assert run(data, out, "--height", "4", "--width", "2") == 2  # the later options win
        one_line_error(capsys, "--height/--width 4x2")
    elif case == "init_and_pretrained":
        assert run(data, out, "--pretrained", "a.pth", "--init-from", "b.pt") == 2
        one_line_error(capsys, "--pretrained", "--init-from")
    elif case == "one_identity":
        root = tmp_path / "one"
        tiny_set(root, 1, 2)
        assert run(root, out) == 2
        one_line_error(capsys, "identit")
    elif case == "no_valid_query":
        root = tmp_path / "noquery"
        tiny_set(root, 4, 2)
        for name in os.listdir(root / "bounding_box_test"):
            os.remove(root / "bounding_box_test" / name)
        tiny_set(tmp_path / "other", 2, 2, seed=3)
        for name in os.listdir(tmp_path / "other" / "bounding_box_test"):  # another set's ids: no query matches
            pid = int(name.split("_")[0]) + 50
            os.rename(
                tmp_path / "other" / "bounding_box_test" / name, root / "bounding_box_test" / f"{pid:04d}{name[4:]}"
            )
        assert run(root, out) == 2
        one_line_error(capsys)
        assert not (out / "last.pt").exists()  # refused before the first epoch
    elif case == "corrupt_image_with_workers":
        root = tmp_path / "corrupt"
        tiny_set(root, 4, 2)
        victim = sorted(os.listdir(root / "bounding_box_train"))[0]
        (root / "bounding_box_train" / victim).write_bytes(b"not a jpeg")
        assert run(root, out, "--workers", "2") == 2
        one_line_error(capsys, victim)
    elif case == "divergence":
        assert run(data, out, "--lr", "1e30", "--momentum", "0") == 2
        one_line_error(capsys)


def test_a_missing_optional_package_is_one_line(data, tmp_path, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert run(data, tmp_path / "tb", "--tensorboard") == 2
    one_line_error(capsys, "pip install tensorboard")
