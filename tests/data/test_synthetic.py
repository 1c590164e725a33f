import hashlib
import os

import pytest

from ptl_ext.data import make_synthetic_market, market1501, read_image


def digest(root):
    h = hashlib.sha256()
    for split in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, split))):
            h.update(name.encode())
            with open(os.path.join(root, split, name), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


SMALL = dict(
    num_train_ids=5, num_test_ids=4, num_cams=3, images_per_cam=2, num_distractors=3, num_junk=2, height=48, width=24
)


def test_synthetic_is_a_market_dataset(tmp_path):
    info = make_synthetic_market(tmp_path, seed=1, **SMALL)
    data = market1501(tmp_path)
    assert data.num_train_pids == 5 and len(data.train) == info["counts"]["bounding_box_train"]
    assert {pid for _, pid, _ in data.query} == set(info["test_ids"])
    gallery_pids = [pid for _, pid, _ in data.gallery]
    assert gallery_pids.count(0) == 3  # distractors
    assert len(data.gallery) == info["counts"]["bounding_box_test"] - 2  # junk dropped by the reader
    # each test identity is seen by >= 2 cameras, so every query has a cross-camera match
    for _, pid, cam in data.query:
        assert any(g_pid == pid and g_cam != cam for _, g_pid, g_cam in data.gallery)
    image = read_image(data.train[0][0])
    assert image.shape == (3, 48, 24)
    assert image.float().std() > 10  # not a blank image


def test_synthetic_deterministic_under_seed(tmp_path):
    make_synthetic_market(tmp_path / "a", seed=7, **SMALL)
    make_synthetic_market(tmp_path / "b", seed=7, **SMALL)
    make_synthetic_market(tmp_path / "c", seed=8, **SMALL)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_cameras_outweigh_identity_in_raw_pixels(tmp_path):
    """Raw pixels favour the same camera over the same person, yet identity still carries signal."""
    import torch

    make_synthetic_market(
        tmp_path, num_train_ids=10, num_test_ids=1, num_cams=4, images_per_cam=3, height=48, width=24, seed=2
    )
    data = market1501(tmp_path)
    pixels = torch.stack([read_image(p).float().flatten() / 255 for p, _, _ in data.train])
    pid = torch.tensor([p for _, p, _ in data.train])
    cam = torch.tensor([c for _, _, c in data.train])
    dist = torch.cdist(pixels, pixels)
    pairs = torch.ones_like(dist, dtype=torch.bool).triu(1)
    same_id, same_cam = pid[:, None] == pid[None], cam[:, None] == cam[None]

    def mean(mask):
        return dist[mask & pairs].mean().item()

    assert mean(same_id & ~same_cam) > mean(~same_id & same_cam)
    assert mean(same_id & ~same_cam) < mean(~same_id & ~same_cam)
    assert mean(same_id & same_cam) < mean(~same_id & same_cam)


def test_synthetic_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="num_cams"):
        make_synthetic_market(tmp_path, num_cams=7)
    with pytest.raises(ValueError, match="images_per_cam"):
        make_synthetic_market(tmp_path, images_per_cam=1)
    make_synthetic_market(tmp_path, seed=0, **SMALL)
    with pytest.raises(FileExistsError, match="not empty"):
        make_synthetic_market(tmp_path, seed=0, **SMALL)


def test_source_domain_is_another_population_under_other_cameras(tmp_path):
    """The source set (pre-training) has people disjoint from the target's and its own camera statistics."""
    import numpy as np
    import torch

    from ptl_ext.data.synthetic import _camera, _identity

    def same(a, b):
        return all(np.array_equal(a[k], b[k]) if isinstance(a[k], np.ndarray) else a[k] == b[k] for k in a)

    target = [_identity(0, pid, "target") for pid in range(1, 41)]
    source = [_identity(0, pid, "source") for pid in range(1, 81)]
    assert not any(same(s, t) for s in source for t in target)
    assert not any(same(_camera(0, c, "source"), _camera(0, c, "target")) for c in range(6))
    means = {}
    for domain in ("target", "source"):
        info = make_synthetic_market(
            tmp_path / domain,
            num_train_ids=8,
            num_test_ids=2,
            num_cams=4,
            images_per_cam=2,
            height=48,
            width=24,
            seed=0,
            domain=domain,
        )
        assert info["domain"] == domain
        data = market1501(tmp_path / domain)
        means[domain] = torch.stack([read_image(p).float().mean() for p, _, _ in data.train]).mean().item()
    assert means["source"] > means["target"] + 20  # brighter light and backgrounds: a shift in raw statistics
    make_synthetic_market(
        tmp_path / "again",
        num_train_ids=8,
        num_test_ids=2,
        num_cams=4,
        images_per_cam=2,
        height=48,
        width=24,
        seed=0,
        domain="source",
    )
    assert digest(tmp_path / "again") == digest(tmp_path / "source")
    with pytest.raises(ValueError, match="domain"):
        make_synthetic_market(tmp_path / "bad", domain="imagenet")
