"""Image decoding with Pillow into torch tensors, and a start-up check that a split's images can be read."""

import numpy as np
import torch
from PIL import Image

from ..errors import ImageDecodeError, ImageNotFoundError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def read_image(path):
    """Decode an image file to an RGB ``uint8`` tensor ``[3, H, W]``.

    Raises (one-line messages naming the file, also from DataLoader worker processes):
        ImageNotFoundError: ``path`` does not exist (a ``FileNotFoundError``).
        ImageDecodeError: Pillow cannot decode the file (a ``RuntimeError``).
    """
    try:
        with Image.open(path) as img:
            array = rgb_array(img)
    except FileNotFoundError:
        raise ImageNotFoundError(f"read_image: image file not found: {path}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"read_image: cannot decode image {path}: {_one_line(exc)}") from exc
    return torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C"))  # one copy, writable


_WIDE_GREY = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # Pillow's modes of 16-bit greyscale PNGs


def rgb_array(image):
    """``uint8 [H, W, 3]`` RGB array of a PIL image of any mode.

    16-bit greyscale images (PNG ``I;16`` / ``I``) are scaled from 0..65535 to 0..255: Pillow's own
    ``convert("RGB")`` clips them at 255, which turns most such images white.
    """
    if image.mode in _WIDE_GREY:
        wide = np.asarray(image).astype(np.int64).clip(0, 65535)
        grey = ((wide * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"))


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


def _probe(path, decode):
    """Read ``path``'s header (or decode it all with ``decode``), raising :func:`read_image`'s errors."""
    if decode:
        read_image(path)
        return
    try:
        with Image.open(path):
            pass
    except FileNotFoundError:
        raise ImageNotFoundError(f"read_image: image file not found: {path}") from None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(f"read_image: cannot decode image {path}: {_one_line(exc)}") from exc


def check_images(paths, what="images", decode=False):
    """Check that every file of ``paths`` exists and is an image Pillow can read, before any training.

    Without ``decode`` only each file's header is read (fast: it finds missing, empty and foreign
    files); with ``decode`` every image is fully decoded (finds truncated files too, at decoding cost).

    Raises:
        ImageNotFoundError / ImageDecodeError: naming ``what``, how many files fail and the first one.
    """
    bad, first = 0, None
    for path in paths:
        try:
            _probe(path, decode)
        except (ImageNotFoundError, ImageDecodeError) as exc:
            bad += 1
            first = first or exc
    if first is not None:
        raise type(first)(f"{what}: {bad} file(s) cannot be read; the first: {first}")


def write_image(path, image, quality=95):
    """Encode an RGB ``uint8`` array ``[H, W, 3]`` (numpy) or tensor ``[3, H, W]`` to ``path``.

    The format follows the file extension; JPEG uses ``quality``.
    """
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(
                f"write_image: image tensor must be uint8 [3, H, W], got {image.dtype} {list(image.shape)}"
            )
        image = image.permute(1, 2, 0).numpy()
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_image: image array must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    Image.fromarray(image).save(path, quality=quality)
