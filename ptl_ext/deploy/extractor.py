"""Feature extraction for your own images with a trained network: files, folders, PIL images or tensors.

Images go through the checkpoint's test pipeline (resize to its input size, ImageNet mean/std, or
the CIFAR statistics for a CIFAR checkpoint) and the evaluator's own feature path
(:func:`ptl_ext.train.evaluation.extract_features`: eval mode, optional flip sum), so the features
equal those ``ptl eval`` ranks.

Unreadable images: every file is tried; the ones Pillow cannot decode are collected and, by default,
reported together in one :class:`UnreadableImagesError` (nothing is returned or written). With
``skip_unreadable=True`` they are left out and listed in :attr:`Extraction.skipped` instead.
"""

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .. import _checks
from .._io import atomic_write
from ..data.image import IMAGE_EXTENSIONS, read_image, rgb_array
from ..data.loaders import build_dataloader, check_batch_memory
from ..data.reid_datasets import parse_person_name
from ..data.transforms import CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD, Compose, Normalize, Resize, ToFloat
from ..train.evaluation import extract_features
from ._model import load_network, meta_input_size, model_device

__all__ = [
    "FeatureExtractor",
    "Extraction",
    "UnreadableImagesError",
    "extract_to_npz",
    "list_images",
    "parse_market_name",
]


class UnreadableImagesError(ValueError):
    """Some input images could not be decoded; ``failures`` lists ``(name, reason)`` for each of them."""

    def __init__(self, failures):
        self.failures = list(failures)
        shown = "\n".join(f"  {name}: {reason}" for name, reason in self.failures[:20])
        more = f"\n  ... and {len(self.failures) - 20} more" if len(self.failures) > 20 else ""
        super().__init__(
            f"{len(self.failures)} image(s) could not be read (pass skip_unreadable=True, or "
            f"--skip-unreadable, to leave them out):\n{shown}{more}"
        )


@dataclass
class Extraction:
    """What :meth:`FeatureExtractor.extract` returns.

    ``features``: ``[N, D]`` float32 CPU tensor, one row per readable input in input order; ``names``:
    the ``N`` inputs' names (paths as given, paths relative to a folder, ``image_<i>`` for PIL
    images and tensor rows); ``skipped``: ``(name, reason)`` of each unreadable input left out.
    """

    features: torch.Tensor
    names: list
    skipped: list = field(default_factory=list)


def list_images(folder):
    """Image files (``.jpg``, ``.jpeg``, ``.png``, ``.bmp``) under ``folder``, recursively, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [os.path.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
    return found


def parse_market_name(name):
    """``(pid, camera)`` of a Market-style file name (``0001_c1s1_000151_00.jpg`` -> ``(1, 1)``; the
    camera as written, 1-based), or ``None`` when ``name``'s base name does not follow that pattern.

    ``ValueError`` for a pid outside ``-1..MAX_PID`` or camera ``c0`` (see
    :func:`ptl_ext.data.reid_datasets.parse_person_name`)."""
    return parse_person_name(name, "inputs")


def _pil_to_tensor(image):
    """RGB ``uint8 [3, H, W]`` tensor of a PIL image (any mode, 16-bit greyscale scaled)."""
    array = rgb_array(image)
    return torch.from_numpy(np.array(array.transpose(2, 0, 1), order="C"))


def _collect(inputs):
    """``(sources, names)`` of ``inputs``: sources are file paths, PIL images or ``[3, H, W]`` tensors."""
    if isinstance(inputs, torch.Tensor):
        if inputs.dim() == 3:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != 4 or inputs.shape[1] != 3 or 0 in inputs.shape:
            raise ValueError(
                "inputs: an image tensor must be [N, 3, H, W] (or [3, H, W]) with N, H, W >= 1, "
                f"got {list(inputs.shape)}"
            )
        if not (inputs.dtype == torch.uint8 or inputs.is_floating_point()):
            raise TypeError(f"inputs: an image tensor must be uint8 or floating in [0, 1], got {inputs.dtype}")
        return list(inputs.cpu().unbind(0)), [f"image_{i}" for i in range(inputs.shape[0])]
    if isinstance(inputs, (str, os.PathLike, Image.Image)):
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(
            "inputs must be an image path, a folder, a PIL image, a list of paths or PIL images, "
            f"or an [N, 3, H, W] tensor; got {type(inputs).__name__}"
        )
    sources, names = [], []
    for i, item in enumerate(inputs):
        if isinstance(item, Image.Image):
            sources.append(item)
            names.append(f"image_{i}")
        elif isinstance(item, (str, os.PathLike)):
            path = os.fspath(item)
            if os.path.isdir(path):
                found = list_images(path)
                if not found:
                    raise ValueError(f"inputs: folder {path} holds no {'/'.join(IMAGE_EXTENSIONS)} images")
                sources += found
                names += [os.path.relpath(p, path) for p in found]
            else:
                sources.append(path)
                names.append(path)
        else:
            raise TypeError(f"inputs[{i}] must be a path or a PIL image, got {type(item).__name__}")
    if not sources:
        raise ValueError("inputs: no images given")
    return sources, names


class _Images(torch.utils.data.Dataset):
    """Decoded, transformed images; an unreadable one yields ``(None, index, reason)`` instead of raising."""

    def __init__(self, sources, transform):
        self.sources, self.transform = sources, transform

    def __len__(self):
        return len(self.sources)

    def __getitem__(self, index):
        source = self.sources[index]
        try:
            if isinstance(source, torch.Tensor):
                image = source
            elif isinstance(source, Image.Image):
                image = _pil_to_tensor(source)
            else:
                image = read_image(source)
        except (OSError, RuntimeError, ValueError) as exc:
            return None, index, str(exc)
        return self.transform(image), index, None


def _collate(batch):
    """``(images [B, 3, H, W] or None, indices int64 [B], failures [(index, reason)])``."""
    good = [(image, index) for image, index, _ in batch if image is not None]
    failures = [(index, reason) for image, index, reason in batch if image is None]
    images = torch.stack([image for image, _ in good]) if good else None
    return images, torch.tensor([index for _, index in good], dtype=torch.int64), failures


class FeatureExtractor:
    """Eval-mode features of images, as the evaluator computes them.

    Args:
        source: a ``ptl train`` checkpoint path, a loaded checkpoint state, or an ``nn.Module`` (then
            pass ``input_size``; it is used as it is, on its own device unless ``device`` is given).
        device: ``"cpu"``, ``"cuda"``, ... (default: CUDA when available for a checkpoint, else CPU).
        batch_size: images per forward pass; workers: DataLoader worker processes (0 = this process).
        flip: a feature is the sum of the image's and its mirror's features (as the evaluator does).
        normalize: L2-normalise each feature row (what ``--normalize`` does before ranking).
        input_size: ``(H, W)`` images are resized to; default the checkpoint's training size.

    Calling the extractor on image paths, a folder (recursively), PIL images or an ``[N, 3, H, W]``
    tensor (``uint8``, or floating in ``[0, 1]``) returns ``[N, D]`` float32 features on the CPU.
    """

    def __init__(self, source, device=None, batch_size=64, flip=True, normalize=True, input_size=None, workers=0):
        self.model, self.meta = load_network(source, "FeatureExtractor source")
        self.batch_size = _checks.positive_int(batch_size, "batch_size")
        self.workers = _checks.integer(workers, "workers", minimum=0)
        self.flip = _checks.boolean(flip, "flip")
        self.normalize = _checks.boolean(normalize, "normalize")
        if input_size is None:
            input_size = meta_input_size(self.meta)
            if input_size is None:
                raise ValueError("input_size is required for a model without checkpoint meta: pass (height, width)")
        self.input_size = _checks.size_pair(input_size, "input_size")
        check_batch_memory(self.batch_size, *self.input_size, f"batch_size={self.batch_size}")
        if device is None:
            device = model_device(self.model) if not self.meta else ("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device}: CUDA is not available")
        self.model.to(self.device)
        cifar = self.meta.get("head") == "cifar"
        mean, std = (CIFAR_MEAN, CIFAR_STD) if cifar else (IMAGENET_MEAN, IMAGENET_STD)
        self.transform = Compose([Resize(self.input_size), ToFloat(), Normalize(mean, std)])

    def __call__(self, inputs):
        """``[N, D]`` float32 CPU features of ``inputs`` (see the class docstring); raises
        :class:`UnreadableImagesError` listing every image that could not be decoded."""
        return self.extract(inputs).features

    def extract(self, inputs, skip_unreadable=False, progress=False):
        """Features with their names: an :class:`Extraction`.

        ``skip_unreadable``: leave undecodable images out (listed in ``skipped``) instead of raising
        :class:`UnreadableImagesError`; ``progress``: show a tqdm bar over the batches.
        """
        _checks.boolean(skip_unreadable, "skip_unreadable")
        sources, names = _collect(inputs)
        loader = build_dataloader(
            _Images(sources, self.transform),
            batch_size=self.batch_size,
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
        )
        loader.collate_fn = _collate
        failures = []

        def batches():
            bar = tqdm(loader, desc="extracting", unit="batch", disable=not progress, dynamic_ncols=True)
            for images, indices, failed in bar:
                failures.extend(failed)
                if images is not None:
                    yield images, indices, torch.zeros_like(indices)

        feats, kept = None, torch.zeros(0, dtype=torch.int64)
        try:
            feats, kept, _ = extract_features(self.model, batches(), self.device, self.flip)
        except ValueError as exc:
            if "no batches" not in str(exc):  # every image unreadable: reported below
                raise
        skipped = [(names[i], reason) for i, reason in sorted(failures)]
        if skipped and (not skip_unreadable or feats is None):
            raise UnreadableImagesError(skipped)
        feats = feats.float()
        if self.normalize:
            feats = F.normalize(feats, dim=1)
        return Extraction(feats.cpu(), [names[i] for i in kept.tolist()], skipped)


def extract_to_npz(extractor, inputs, out_path, progress=True, skip_unreadable=False):
    """Extract ``inputs`` with ``extractor`` and write ``out_path`` (``.npz``) atomically.

    The file holds ``features`` (``[N, D]`` float32), ``names`` (``[N]`` str) and, when every name is
    Market-style (``0001_c1s1_000151_00.jpg``), ``pids`` and ``camids`` (``[N]`` int64; cameras
    0-based as in :mod:`ptl_ext.data`), plus ``skipped`` (names of unreadable images left out). Nothing
    is written when extraction fails. Returns the :class:`Extraction`.
    """
    if not isinstance(extractor, FeatureExtractor):
        raise TypeError(f"extractor must be a FeatureExtractor, got {type(extractor).__name__}")
    out_path = os.fspath(out_path)
    if not out_path.endswith(".npz"):
        raise ValueError(f"out_path must end with .npz, got {out_path!r}")
    for name in _collect(inputs)[1]:  # pids and cameras are checked before any feature is computed
        parse_market_name(name)
    result = extractor.extract(inputs, skip_unreadable=skip_unreadable, progress=progress)
    arrays = {
        "features": result.features.numpy(),
        "names": np.array(result.names, dtype=str),
        "skipped": np.array([name for name, _ in result.skipped], dtype=str),
    }
    parsed = [parse_market_name(name) for name in result.names]
    if parsed and all(p is not None for p in parsed):
        arrays["pids"] = np.array([p for p, _ in parsed], dtype=np.int64)
        arrays["camids"] = np.array([c - 1 for _, c in parsed], dtype=np.int64)
    atomic_write(out_path, lambda fh: np.savez(fh, **arrays))
    return result
