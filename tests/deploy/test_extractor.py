"""FeatureExtractor: the evaluator's own features for files, folders, PIL images and tensors; npz output."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ptl_ext.data import Resize, build_reid_eval_loaders, make_synthetic_market, market1501, read_image
from ptl_ext.deploy import FeatureExtractor, UnreadableImagesError, extract_to_npz, parse_market_name
from ptl_ext.models import create_model
from ptl_ext.train import extract_features, save_checkpoint

SIZE = (32, 16)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_synthetic_market(
        root,
        num_train_ids=2,
        num_test_ids=3,
        num_cams=2,
        images_per_cam=2,
        num_distractors=1,
        num_junk=1,
        height=48,
        width=24,
    )
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("resnet34", 2, SIZE)
    meta = {
        "arch": "resnet34",
        "num_classes": 2,
        "height": SIZE[0],
        "width": SIZE[1],
        "v2": False,
        "last_stride": 1,
        "head": "reid",
        "dropout": None,
    }
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(str(path), {"model": model.state_dict(), "meta": meta})
    return str(path), model


def test_features_equal_the_evaluators_path(synthetic, checkpoint):
    path, model = checkpoint
    data = market1501(synthetic)
    query_loader, _ = build_reid_eval_loaders(data, *SIZE, eval_batch_size=4)
    expected, _, _ = extract_features(model.eval(), query_loader, flip=True)
    extractor = FeatureExtractor(path, device="cpu", batch_size=3)
    assert extractor.input_size == SIZE
    got = extractor([p for p, _, _ in data.query])
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    torch.testing.assert_close(got, F.normalize(expected, dim=1), atol=1e-5, rtol=1e-5)
    raw = FeatureExtractor(path, device="cpu", normalize=False, flip=False)([p for p, _, _ in data.query])
    plain, _, _ = extract_features(model, query_loader, flip=False)
    torch.testing.assert_close(raw, plain, atol=1e-5, rtol=1e-5)


def test_every_input_kind_gives_the_same_features(synthetic, checkpoint):
    path, _ = checkpoint
    folder = os.path.join(synthetic, "query")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
    extractor = FeatureExtractor(path, device="cpu", batch_size=4)
    from_files = extractor(files)
    result = extractor.extract(folder)
    assert result.names == [os.path.basename(f) for f in files] and result.skipped == []
    torch.testing.assert_close(result.features, from_files)
    pil = [Image.open(f) for f in files]
    torch.testing.assert_close(extractor(pil), from_files)
    tensors = torch.stack([read_image(f) for f in files])  # the synthetic images all share one size
    torch.testing.assert_close(extractor(tensors), from_files)
    at_size = torch.stack([Resize(SIZE)(t) for t in tensors])  # float images in [0, 1] read like uint8 ones
    torch.testing.assert_close(extractor(at_size.float() / 255), extractor(at_size), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(extractor(files[0]), from_files[:1])


def test_npz_holds_features_names_pids_and_cameras(synthetic, checkpoint, tmp_path):
    path, _ = checkpoint
    folder = os.path.join(synthetic, "bounding_box_test")
    files = sorted(os.listdir(folder))
    out = tmp_path / "feats.npz"
    extract_to_npz(FeatureExtractor(path, batch_size=5), folder, out, progress=False)
    saved = np.load(out)
    assert saved["features"].shape == (len(files), 512) and saved["features"].dtype == np.float32
    assert saved["names"].tolist() == files
    assert saved["pids"].tolist() == [parse_market_name(f)[0] for f in files]
    assert saved["camids"].tolist() == [parse_market_name(f)[1] - 1 for f in files]
    assert -1 in saved["pids"].tolist() and 0 in saved["pids"].tolist()  # junk and distractor names parse too
    assert [f for f in os.listdir(tmp_path)] == ["feats.npz"]  # no temp file left behind


def test_unreadable_images_are_listed_not_a_traceback(synthetic, checkpoint, tmp_path):
    path, _ = checkpoint
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = sorted(os.listdir(os.path.join(synthetic, "query")))[:3]
    for name in good:
        (folder / name).write_bytes((synthetic / "query" / name).read_bytes())
    (folder / "0009_c1s1_000001_00.jpg").write_bytes(b"not a jpeg")
    (folder / "0010_c2s1_000002_00.jpg").write_bytes((synthetic / "query" / good[0]).read_bytes()[:40])
    extractor = FeatureExtractor(path, batch_size=2)
    out = tmp_path / "feats.npz"
    with pytest.raises(UnreadableImagesError, match="2 image") as info:
        extract_to_npz(extractor, folder, out, progress=False)
    assert [name for name, _ in info.value.failures] == ["0009_c1s1_000001_00.jpg", "0010_c2s1_000002_00.jpg"]
    assert "0009_c1s1_000001_00.jpg" in str(info.value) and not out.exists()
    result = extract_to_npz(extractor, folder, out, progress=False, skip_unreadable=True)
    saved = np.load(out)
    assert saved["names"].tolist() == good == result.names
    assert saved["skipped"].tolist() == ["0009_c1s1_000001_00.jpg", "0010_c2s1_000002_00.jpg"]
    with pytest.raises(UnreadableImagesError, match="1 image"):  # nothing readable at all
        extractor.extract([str(folder / "0009_c1s1_000001_00.jpg")], skip_unreadable=True)


def test_bad_arguments_are_named(checkpoint, tmp_path):
    path, model = checkpoint
    with pytest.raises(ValueError, match="input_size is required"):
        FeatureExtractor(model)
    with pytest.raises(ValueError, match="batch_size"):
        FeatureExtractor(path, batch_size=0)
    with pytest.raises(TypeError, match="checkpoint path"):
        FeatureExtractor(3)
    extractor = FeatureExtractor(model, input_size=SIZE)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        extractor(torch.zeros(2, 1, 8, 8))
    with pytest.raises(TypeError, match="inputs"):
        extractor(5)
    with pytest.raises(ValueError, match="no .* images"):
        extractor(str(tmp_path))
    with pytest.raises(ValueError, match=".npz"):
        extract_to_npz(extractor, torch.zeros(1, 3, 8, 8), tmp_path / "feats.txt")
    assert parse_market_name("dir/0001_c1s1_000151_00.jpg") == (1, 1) and parse_market_name("cat.jpg") is None
