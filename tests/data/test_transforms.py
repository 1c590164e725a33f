import pytest
import torch

from ptl_ext.data import (
    Compose,
    Normalize,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    build_cifar_transforms,
    build_reid_transforms,
)


@pytest.fixture
def image():
    torch.manual_seed(0)
    return torch.randint(0, 256, (3, 40, 20), dtype=torch.uint8)


def test_resize_keeps_dtype_and_sets_shape(image):
    out = Resize((64, 32))(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 64, 32)
    floating = Resize(16)(image.float())
    assert floating.dtype == torch.float32 and floating.shape == (3, 16, 16)
    assert Resize((40, 20))(image) is image
    flat = torch.full((3, 10, 10), 77, dtype=torch.uint8)
    assert torch.equal(Resize((23, 7))(flat), torch.full((3, 23, 7), 77, dtype=torch.uint8))
    with pytest.raises(ValueError, match="Resize: size"):
        Resize((0, 3))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        Resize(8)(image[0])


def test_flip_probability_extremes(image):
    assert torch.equal(RandomHorizontalFlip(1.0)(image), image.flip(-1))
    assert torch.equal(RandomHorizontalFlip(0.0)(image), image)
    torch.manual_seed(1)
    flips = sum(torch.equal(RandomHorizontalFlip(0.5)(image), image.flip(-1)) for _ in range(200))
    assert 60 < flips < 140
    with pytest.raises(ValueError, match="p must be"):
        RandomHorizontalFlip(1.5)


def test_pad_and_random_crop(image):
    crop = RandomCrop((40, 20), padding=4)
    outs = [crop(image) for _ in range(20)]
    assert all(o.shape == (3, 40, 20) and o.dtype == torch.uint8 for o in outs)
    # every crop is a window of the zero-padded image
    padded = torch.nn.functional.pad(image, (4, 4, 4, 4))
    for out in outs:
        assert any(torch.equal(out, padded[:, t : t + 40, l : l + 20]) for t in range(9) for l in range(9))  # noqa: E741
    assert len({o.sum().item() for o in outs}) > 1
    assert torch.equal(RandomCrop((40, 20))(image), image)
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop((50, 20))(image)


def test_to_float_and_normalize(image):
    f = ToFloat()(image)
    assert f.dtype == torch.float32 and f.shape == image.shape
    assert torch.allclose(f * 255, image.float())
    norm = Normalize((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))(f)
    assert torch.allclose(norm[1], (f[1] - 0.5) / 0.5)
    with pytest.raises(TypeError, match="ToFloat first"):
        Normalize((0.5,) * 3, (1.0,) * 3)(image)
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize((0.5,) * 3, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="channels"):
        Normalize((0.5,), (1.0,))(f)


def test_random_erasing(image):
    f = ToFloat()(image)
    torch.manual_seed(0)
    out = RandomErasing(p=1.0, value=0.0)(f)
    assert out.shape == f.shape and out.dtype == f.dtype
    erased = (out != f).any(0)
    assert erased.any()
    rows, cols = erased.nonzero(as_tuple=True)
    # a single filled rectangle
    box = out[:, rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert (box == 0).all()
    assert torch.equal(RandomErasing(p=0.0)(f), f)
    noisy = RandomErasing(p=1.0, value="random")(f)
    assert noisy.shape == f.shape and not torch.equal(noisy, f)
    with pytest.raises(TypeError, match="floating"):
        RandomErasing(p=1.0)(image)
    with pytest.raises(ValueError, match="value"):
        RandomErasing(value="mean")


def test_reid_pipelines_contract(image):
    train = build_reid_transforms(64, 32, train=True)
    test = build_reid_transforms(64, 32, train=False)
    for pipeline in (train, test):
        out = pipeline(image)
        assert out.shape == (3, 64, 32) and out.dtype == torch.float32
    assert torch.equal(test(image), test(image))
    assert isinstance(train, Compose) and "RandomErasing" in repr(train) and "RandomErasing" not in repr(test)


def test_cifar_pipelines_contract():
    img = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    for train, augment in ((True, True), (True, False), (False, True)):
        out = build_cifar_transforms(train, augment)(img)
        assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert "RandomCrop" in repr(build_cifar_transforms(True, True))
    assert "RandomCrop" not in repr(build_cifar_transforms(True, False))
