"""ReIDEvaluator.check: what can fail at evaluation is found before the first epoch."""

import pytest

from ptl_ext.data import ReIDData, build_reid_eval_loaders, make_synthetic_market, market1501
from ptl_ext.errors import DataError, ImageDecodeError
from ptl_ext.train import ReIDEvaluator


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_market(
        root,
        num_train_ids=2,
        num_test_ids=3,
        num_cams=2,
        images_per_cam=2,
        num_distractors=1,
        num_junk=0,
        height=16,
        width=8,
        seed=1,
    )
    return market1501(root)


def evaluator(data):
    return ReIDEvaluator(*build_reid_eval_loaders(data, 16, 8))


def test_valid_queries_are_counted(dataset):
    # every test identity is seen by both cameras: each query has a gallery image from the other camera
    assert evaluator(dataset).check() == len(dataset.query) == 6


def test_no_valid_query_and_unreadable_images_are_start_up_errors(dataset, tmp_path):
    same_camera = [(p, pid, cam) for p, pid, cam in dataset.gallery if cam == 0]
    query = [(p, pid, 0) for p, pid, _ in dataset.query]
    with pytest.raises(DataError, match="no query has a valid match"):
        evaluator(ReIDData("x", dataset.train, query, same_camera)).check()
    bad = tmp_path / "0009_c1s1_000001_00.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match=f"the gallery split: 1 file\\(s\\) cannot be read.*{bad.name}"):
        evaluator(ReIDData("x", dataset.train, dataset.query, [*dataset.gallery, (str(bad), 9, 0)])).check()
    with pytest.raises(DataError, match="the query split is empty"):
        evaluator(ReIDData("x", dataset.train, [], dataset.gallery)).check()
