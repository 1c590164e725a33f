"""Person ids and cameras from file names, checked where the names are read (before any feature is computed);
empty inputs, 16-bit PNGs, and the --skip-unreadable spelling of ptl extract."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import ptl_ext.deploy.extractor as extractor_module
from ptl_ext.data import market1501, read_image
from ptl_ext.data.reid_datasets import MAX_PID
from ptl_ext.deploy import FeatureExtractor, extract_to_npz, parse_market_name


class Tiny(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


@pytest.fixture
def extractor():
    return FeatureExtractor(Tiny(), device="cpu", input_size=(8, 4))


def image(path, value=100):
    Image.fromarray(np.full((16, 8, 3), value, dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("pid", ["99999999999999999999999", str(2**64 - 1), str(MAX_PID + 1)])
def test_a_huge_person_id_is_refused_before_any_feature_is_computed(tmp_path, extractor, monkeypatch, pid):
    image(tmp_path / "0001_c1s1_000001_00.jpg")
    image(tmp_path / f"{pid}_c1s1_000001_00.jpg")

    def no_features(*args, **kwargs):
        raise AssertionError("features were computed before the names were checked")

    monkeypatch.setattr(extractor_module, "extract_features", no_features)
    with pytest.raises(ValueError, match=f"person id {pid}; expected an id in -1..{MAX_PID}"):
        extract_to_npz(extractor, tmp_path, str(tmp_path / "out.npz"), progress=False)
    assert not (tmp_path / "out.npz").exists()


def test_camera_c0_is_refused_not_turned_into_minus_one(tmp_path, extractor):
    image(tmp_path / "0001_c0s1_000001_00.jpg")
    with pytest.raises(ValueError, match="camera c0; .*numbered from 1"):
        extract_to_npz(extractor, tmp_path, str(tmp_path / "out.npz"), progress=False)
    with pytest.raises(ValueError, match="c0 is invalid"):
        parse_market_name("0001_c0s1_000001_00.jpg")


def test_valid_names_still_give_pids_and_0_based_cameras(tmp_path, extractor):
    image(tmp_path / f"{MAX_PID}_c3s1_000001_00.jpg")
    image(tmp_path / "-1_c1s1_000001_00.jpg")
    extract_to_npz(extractor, tmp_path, str(tmp_path / "out.npz"), progress=False)
    saved = np.load(tmp_path / "out.npz")
    assert sorted(saved["pids"].tolist()) == [-1, MAX_PID] and sorted(saved["camids"].tolist()) == [0, 2]


def test_a_dataset_with_a_uint64_sized_person_id_is_refused(tmp_path):
    for split in ("bounding_box_train", "query", "bounding_box_test"):
        (tmp_path / split).mkdir()
        image(tmp_path / split / "0001_c1s1_000001_00.jpg")
    image(tmp_path / "query" / f"{2**64 + 5}_c1s1_000001_00.jpg")
    with pytest.raises(ValueError, match="person id 18446744073709551621"):
        market1501(tmp_path)


def test_the_ptl_extract_cli_refuses_a_huge_id_in_one_line(tmp_path, cli, util):
    from ptl_ext.models import create_model
    from ptl_ext.train import save_checkpoint

    model = create_model("densenet_bc100", 2, (32, 16))
    meta = dict(arch="densenet_bc100", num_classes=2, height=32, width=16, head="reid", dropout=None)
    save_checkpoint(str(tmp_path / "best.pt"), {"model": model.state_dict(), "meta": meta})
    (tmp_path / "images").mkdir()
    image(tmp_path / "images" / f"{10**30}_c1s1_000001_00.jpg")
    status, err = cli("extract", tmp_path / "images", "--checkpoint", tmp_path / "best.pt", "--out", tmp_path / "f.npz")
    assert status == 2 and "person id" in util.one_line(err)


@pytest.mark.parametrize("shape", [(0, 3, 8, 4), (2, 3, 0, 4), (3, 0, 4)])
def test_an_empty_tensor_is_a_clear_error(extractor, shape):
    with pytest.raises(ValueError, match=r"inputs: an image tensor must be \[N, 3, H, W\]"):
        extractor(torch.zeros(shape))


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path):
    wide = np.array([[0, 257, 32896], [65535, 1000, 40000]], dtype=np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as img:
        assert img.mode.startswith("I")  # Pillow reads a 16-bit greyscale PNG in a wide mode
    decoded = read_image(str(tmp_path / "deep.png"))
    expected = np.round(wide.astype(np.float64) * 255 / 65535).astype(np.uint8)
    assert decoded.shape == (3, 2, 3)
    for channel in decoded.numpy():
        np.testing.assert_array_equal(channel, expected)


def test_a_16_bit_pil_image_is_scaled_in_the_extractor(extractor):
    wide = Image.fromarray(np.full((8, 4), 32896, dtype=np.uint16))
    plain = Image.fromarray(np.full((8, 4, 3), 128, dtype=np.uint8))
    assert torch.allclose(extractor([wide]), extractor([plain]))


@pytest.mark.parametrize("spelling", ["--skip-unreadable", "--skip_unreadable"])
def test_the_advertised_skip_unreadable_spelling_is_accepted(spelling):
    from ptl_ext.cli import parse_args

    args = parse_args(["extract", "x.jpg", "--checkpoint", "c.pt", "--out", "f.npz", spelling])
    assert args.skip_unreadable is True
    assert parse_args(["extract", "x.jpg", "--checkpoint", "c.pt", "--out", "f.npz", "--no-skip-unreadable"])


def test_uint64_ids_above_int64_are_refused_not_wrapped_to_junk():
    from ptl_ext.reid import evaluate_rank

    distmat = torch.rand(1, 2)
    cams = (np.array([0]), np.array([1, 1]))
    wrapped = np.array([2**64 - 1], dtype=np.uint64)  # would become -1, the junk id
    with pytest.raises(ValueError, match="q_pids holds ids above 2\\^63 - 1"):
        evaluate_rank(distmat, wrapped, np.array([1, 2], dtype=np.uint64), *cams)
    fine = evaluate_rank(distmat, np.array([1], dtype=np.uint64), np.array([1, 2], dtype=np.uint64), *cams)
    assert fine.num_valid == 1 and fine.mAP > 0
