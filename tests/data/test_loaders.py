import numpy as np
import pytest
import torch

from ptl_ext.data import (
    ImageDataset,
    build_dataloader,
    build_reid_loaders,
    market1501,
    read_image,
    write_image,
)


def test_image_roundtrip_png(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (12, 7, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", array)
    image = read_image(tmp_path / "a.png")
    assert image.dtype == torch.uint8 and image.shape == (3, 12, 7)
    assert np.array_equal(image.permute(1, 2, 0).numpy(), array)
    write_image(tmp_path / "b.png", image)
    assert torch.equal(read_image(tmp_path / "b.png"), image)


def test_image_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(RuntimeError, match="cannot decode"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        write_image(tmp_path / "x.png", np.zeros((4, 4), np.uint8))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from ptl_ext.data import make_synthetic_market

    root = tmp_path_factory.mktemp("syn")
    make_synthetic_market(root, num_train_ids=6, num_test_ids=4, images_per_cam=2, height=32, width=16, seed=3)
    return market1501(root)


def test_image_dataset_items(synthetic):
    dataset = ImageDataset(synthetic.train)
    image, pid, camid = dataset[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 32, 16)
    assert (pid, camid) == synthetic.train[0][1:]
    assert dataset.pids == [p for _, p, _ in synthetic.train]


def test_reid_loaders_batches(synthetic):
    train, query, gallery = build_reid_loaders(synthetic, 24, 12, p=3, k=2, eval_batch_size=5)
    images, pids, camids = next(iter(train))
    assert images.shape == (6, 3, 24, 12) and images.dtype == torch.float32
    assert pids.dtype == torch.int64 and len(set(pids.tolist())) == 3
    assert sum(len(b[1]) for b in query) == len(synthetic.query)
    assert torch.cat([b[1] for b in gallery]).tolist() == [p for _, p, _ in synthetic.gallery]


def test_reid_loaders_shard_eval_sets_over_ranks(synthetic):
    shards = [build_reid_loaders(synthetic, 24, 12, p=2, k=2, rank=r, world_size=2)[2] for r in range(2)]
    sizes = [sum(len(b[1]) for b in loader) for loader in shards]
    assert sum(sizes) == len(synthetic.gallery) and abs(sizes[0] - sizes[1]) <= 1


def test_dataloader_workers_are_seeded_by_the_loader_generator(synthetic):
    dataset = ImageDataset(synthetic.train[:8], lambda img: img.float() + torch.rand(()))
    loader = build_dataloader(dataset, batch_size=4, num_workers=2, seed=11)
    first = torch.cat([b[0] for b in loader])
    loader.generator.manual_seed(11)
    again = torch.cat([b[0] for b in loader])
    assert torch.equal(first, again)
    assert not torch.equal(first, torch.cat([b[0] for b in loader]))  # the next epoch differs
    assert loader.pin_memory == torch.cuda.is_available()


def test_dataloader_errors():
    with pytest.raises(ValueError, match="batch_size"):
        build_dataloader([1, 2], batch_size=0)
    with pytest.raises(ValueError, match="num_workers"):
        build_dataloader([1, 2], batch_size=1, num_workers=-1)
