"""The data settings of a training run and their defaults (the one home of these numbers).

``DataConfig`` holds what the loaders need besides the input size (a property of the network, see
:func:`ptl_ext.models.model_info`, or of the dataset, see :func:`ptl_ext.data.get_dataset`): P×K
sampling, augmentation, evaluation batch size and worker count. MGN's recipe (P×K 4×4) overrides P
where the run is built.
"""

from dataclasses import dataclass

from .. import _checks

REID_SAMPLERS = ("pk", "random")


@dataclass
class DataConfig(_checks.Sealed):
    """Loader settings (ReID defaults; CIFAR runs use ``batch_size``).

    ``sampler``: ReID batches of ``p`` identities × ``k`` images (``"pk"``) or of ``batch_size`` images drawn
    uniformly (``"random"``); ``p``/``k``: identities per batch and images per identity; ``batch_size``:
    classification batch and ReID batch of the random sampler; ``erasing``: random-erasing probability;
    ``pad``: zero padding before the random crop (ReID); ``augment``: CIFAR pad-4 crop + flip;
    ``eval_batch_size``: images per evaluation batch; ``workers``: DataLoader worker processes (0 = the main
    process).
    """

    sampler: str = "pk"
    p: int = 16
    k: int = 4
    batch_size: int = 64
    erasing: float = 0.5
    pad: int = 10
    augment: bool = True
    eval_batch_size: int = 128
    workers: int = 2

    def __post_init__(self):
        for name in ("p", "k", "batch_size", "eval_batch_size"):
            setattr(self, name, _checks.positive_int(getattr(self, name), f"DataConfig.{name}"))
        self.pad = _checks.integer(self.pad, "DataConfig.pad", minimum=0)
        self.workers = _checks.integer(self.workers, "DataConfig.workers", minimum=0)
        self.erasing = _checks.real(self.erasing, "DataConfig.erasing", 0.0, 1.0)
        self.augment = _checks.boolean(self.augment, "DataConfig.augment")
        _checks.choice(self.sampler, "DataConfig.sampler", REID_SAMPLERS)


CIFAR_INPUT_SIZE = (32, 32)
