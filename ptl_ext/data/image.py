"""Image decoding with Pillow into torch tensors."""

import numpy as np
import torch
from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def read_image(path):
    """Decode an image file to an RGB ``uint8`` tensor ``[3, H, W]``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: Pillow cannot decode the file (the message names it).
    """
    try:
        with Image.open(path) as img:
            array = np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise FileNotFoundError(f"read_image: image file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"read_image: cannot decode image {path}: {exc}") from exc
    return torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C"))  # one copy, writable


def write_image(path, image, quality=95):
    """Encode an RGB ``uint8`` array ``[H, W, 3]`` (numpy) or tensor ``[3, H, W]`` to ``path``.

    The format follows the file extension; JPEG uses ``quality``.
    """
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"write_image: image tensor must be uint8 [3, H, W], got {image.dtype} {list(image.shape)}")
        image = image.permute(1, 2, 0).numpy()
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_image: image array must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    Image.fromarray(image).save(path, quality=quality)
