"""Data problems are one-line user errors: in DataLoader workers too, before training, for bad generator values."""

import pytest
import torch

from ptl_ext.data import ImageDataset, build_dataloader, build_reid_train_loader, make_synthetic_market, market1501
from ptl_ext.data.image import check_images, write_image
from ptl_ext.errors import DataError, ImageDecodeError, ImageNotFoundError, UserError


@pytest.fixture()
def images(tmp_path):
    good = tmp_path / "0001_c1s1_000001_00.jpg"
    write_image(good, torch.zeros(3, 8, 4, dtype=torch.uint8))
    bad = tmp_path / "0001_c2s1_000002_00.jpg"
    bad.write_bytes(b"this is not a jpeg")
    return good, bad, tmp_path / "0002_c1s1_000003_00.jpg"


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_or_missing_image_is_one_line_with_workers(images, workers):
    good, bad, missing = images
    for path, error in ((bad, ImageDecodeError), (missing, ImageNotFoundError)):
        loader = build_dataloader(
            ImageDataset([(str(good), 1, 0), (str(path), 1, 1)]), batch_size=2, num_workers=workers
        )
        with pytest.raises(error) as info:
            next(iter(loader))
        message = str(info.value)
        assert "\n" not in message and str(path) in message and "DataLoader worker" not in message
        assert isinstance(info.value, UserError)
        if workers:
            assert "Traceback" in info.value.worker_traceback  # kept for debugging


def test_check_images_reports_before_training(images):
    good, bad, missing = images
    check_images([str(good)])
    with pytest.raises(ImageDecodeError, match=f"query split: 1 file\\(s\\) cannot be read; the first: .*{bad.name}"):
        check_images([str(good), str(bad)], "query split")
    with pytest.raises(ImageNotFoundError, match=f"2 file\\(s\\) cannot be read; the first: .*{missing.name}"):
        check_images([str(missing), str(bad)], decode=True)


def test_generator_values_and_single_identity_training_sets_are_refused(tmp_path):
    with pytest.raises(ValueError, match="num_junk must be an integer >= 0, got -3"):
        make_synthetic_market(tmp_path / "a", num_junk=-3)
    with pytest.raises(ValueError, match="num_distractors must be an integer >= 0"):
        make_synthetic_market(tmp_path / "a", num_distractors=-1)
    make_synthetic_market(
        tmp_path / "one",
        num_train_ids=1,
        num_test_ids=1,
        num_cams=2,
        images_per_cam=2,
        num_distractors=0,
        num_junk=0,
        height=16,
        width=8,
    )
    with pytest.raises(DataError, match="the training split has 1 identity"):
        build_reid_train_loader(market1501(tmp_path / "one"), 16, 8, p=1, k=2)
