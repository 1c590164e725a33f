"""Image transforms written with torch ops (no torchvision).

Every transform takes and returns one image tensor ``[C, H, W]``. ``Resize``, flips and crops
keep the dtype (``uint8`` or floating); ``ToFloat`` turns ``uint8`` into ``float32`` in
``[0, 1]``; ``Normalize`` and ``RandomErasing`` need a floating image. Randomness comes from
torch's global generator, which ``DataLoader`` seeds per worker.
"""

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def _check_image(image, name):
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name}: expected an image tensor [C, H, W], got {shape}")


def _check_floating(image, name):
    _check_image(image, name)
    if not image.is_floating_point():
        raise TypeError(f"{name}: expected a floating image (apply ToFloat first), got {image.dtype}")


def _pair(size, name):
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size}")
    return size


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image):
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self):
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class Resize:
    """Bilinear (antialiased) resize to ``(height, width)``; ``uint8`` stays ``uint8`` (rounded)."""

    def __init__(self, size):
        self.size = _pair(size, "Resize")

    def __call__(self, image):
        _check_image(image, "Resize")
        if tuple(image.shape[-2:]) == self.size:
            return image
        work = image.unsqueeze(0)
        if not work.is_floating_point():
            work = work.float()
        out = F.interpolate(work, size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]
        if image.dtype == torch.uint8:
            return out.round_().clamp_(0, 255).to(torch.uint8)
        return out.to(image.dtype)

    def __repr__(self):
        return f"Resize({self.size})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p=0.5):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, image):
        _check_image(image, "RandomHorizontalFlip")
        if torch.rand(()).item() < self.p:
            return image.flip(-1)
        return image

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomCrop:
    """Zero-pad by ``padding`` pixels on every side, then crop a random ``(height, width)`` window."""

    def __init__(self, size, padding=0):
        self.size = _pair(size, "RandomCrop")
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be a non-negative int, got {padding}")
        self.padding = padding

    def __call__(self, image):
        _check_image(image, "RandomCrop")
        if self.padding:
            image = F.pad(image, (self.padding,) * 4)
        height, width = image.shape[-2:]
        out_h, out_w = self.size
        if out_h > height or out_w > width:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded image {(height, width)}")
        top = int(torch.randint(0, height - out_h + 1, ()).item())
        left = int(torch.randint(0, width - out_w + 1, ()).item())
        return image[:, top : top + out_h, left : left + out_w]

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding})"


class ToFloat:
    """``uint8`` ``[C, H, W]`` → ``float32`` in ``[0, 1]`` (floating images pass through as float32)."""

    def __call__(self, image):
        _check_image(image, "ToFloat")
        if image.dtype == torch.uint8:
            return image.to(torch.float32).div_(255.0)
        return image.to(torch.float32)

    def __repr__(self):
        return "ToFloat()"


class Normalize:
    """Per-channel ``(image - mean) / std`` on a floating image."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        if self.mean.numel() != self.std.numel():
            raise ValueError(f"Normalize: mean and std must have the same length, got {len(mean)} and {len(std)}")
        if (self.std <= 0).any():
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, image):
        _check_floating(image, "Normalize")
        if image.shape[0] != self.mean.shape[0]:
            raise ValueError(f"Normalize: image has {image.shape[0]} channels, mean/std have {self.mean.shape[0]}")
        return (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)

    def __repr__(self):
        return f"Normalize(mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()})"


class RandomErasing:
    """Random erasing (Zhong et al.): with probability ``p`` fill a random rectangle.

    The rectangle covers a fraction in ``scale`` of the area with aspect ratio (h/w) in ``ratio``
    (sampled log-uniformly); it is filled with ``value`` (a number; 0 is the mean after
    ``Normalize``) or with standard normal noise when ``value="random"``. Floating images only.
    """

    def __init__(self, p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=0.0, attempts=10):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomErasing: p must be in [0, 1], got {p}")
        if not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"RandomErasing: scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0.0 < ratio[0] <= ratio[1]:
            raise ValueError(f"RandomErasing: ratio must satisfy 0 < min <= max, got {ratio}")
        if value != "random" and not isinstance(value, (int, float)):
            raise ValueError(f"RandomErasing: value must be a number or 'random', got {value!r}")
        self.p, self.scale, self.ratio, self.value, self.attempts = p, scale, ratio, value, attempts

    def __call__(self, image):
        _check_floating(image, "RandomErasing")
        if torch.rand(()).item() >= self.p:
            return image
        channels, height, width = image.shape
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.attempts):
            area = height * width * torch.empty(()).uniform_(*self.scale).item()
            aspect = math.exp(torch.empty(()).uniform_(*log_ratio).item())
            erase_h = int(round(math.sqrt(area * aspect)))
            erase_w = int(round(math.sqrt(area / aspect)))
            if 0 < erase_h < height and 0 < erase_w < width:
                top = int(torch.randint(0, height - erase_h + 1, ()).item())
                left = int(torch.randint(0, width - erase_w + 1, ()).item())
                image = image.clone()
                if self.value == "random":
                    fill = torch.randn(channels, erase_h, erase_w, dtype=image.dtype)
                else:
                    fill = torch.full((channels, erase_h, erase_w), float(self.value), dtype=image.dtype)
                image[:, top : top + erase_h, left : left + erase_w] = fill
                return image
        return image

    def __repr__(self):
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value!r})"


def build_reid_transforms(
    height, width, train, flip=True, padding=10, erasing_p=0.5, mean=IMAGENET_MEAN, std=IMAGENET_STD
):
    """The usual ReID pipeline: ``uint8 [3, h, w]`` → normalised ``float32 [3, height, width]``.

    Training: resize, random flip, zero-pad + random crop back to size, to float, normalise,
    random erasing (``erasing_p=0`` disables it). Test: resize, to float, normalise.
    """
    steps = [Resize((height, width))]
    if train:
        if flip:
            steps.append(RandomHorizontalFlip())
        if padding:
            steps.append(RandomCrop((height, width), padding=padding))
    steps += [ToFloat(), Normalize(mean, std)]
    if train and erasing_p > 0:
        steps.append(RandomErasing(p=erasing_p))
    return Compose(steps)


def build_cifar_transforms(train, augment=True):
    """CIFAR pipeline on ``uint8 [3, 32, 32]``; ``augment`` (the "+" setting) adds pad 4 + crop 32 + flip."""
    steps = []
    if train and augment:
        steps += [RandomCrop(32, padding=4), RandomHorizontalFlip()]
    steps += [ToFloat(), Normalize(CIFAR_MEAN, CIFAR_STD)]
    return Compose(steps)
