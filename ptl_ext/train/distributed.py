"""Distributed helpers for runs under ``torchrun``: process-group setup and gathers."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: ``rank`` of ``world_size`` (1 = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self):
        """True when more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self):
        """True on rank 0, the process that logs and writes files."""
        return self.rank == 0


def init_distributed(device_type="cpu"):
    """Join the process group described by ``torchrun``'s environment (``WORLD_SIZE`` > 1), if any.

    Uses gloo on CPU and nccl on CUDA; on CUDA also selects the ``LOCAL_RANK`` device.
    Returns a :class:`DistInfo` (rank 0 of 1 outside ``torchrun``).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world_size, local_rank)


def gather_interleaved(tensor, info):
    """Gather ``[n_r, ...]`` shards where rank ``r`` holds items ``r, r + world_size, ...`` (a
    :class:`ptl_ext.data.ShardSampler`) and interleave them back into dataset order on every rank.
    """
    if not info.distributed:
        return tensor
    length = torch.tensor([tensor.shape[0]], device=tensor.device)
    lengths = [torch.zeros_like(length) for _ in range(info.world_size)]
    dist.all_gather(lengths, length)
    lengths = [int(n) for n in lengths]
    padded = tensor.new_zeros((max(lengths), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded.contiguous())
    out = tensor.new_empty((sum(lengths), *tensor.shape[1:]))
    for rank, (part, n) in enumerate(zip(parts, lengths)):
        out[rank :: info.world_size] = part[:n]
    return out


def broadcast_buffers(module, info):
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank.

    DDP broadcasts them before each training forward, so after the last step every rank holds
    rank 0's statistics updated by its own last batch; evaluation must use one set.
    """
    if info.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def reduction_device(backend):
    """Device a collective of process-group ``backend`` (``dist.get_backend()``) takes its tensors on:
    the current CUDA device for NCCL alone, the CPU otherwise (gloo, or a ``"cpu:gloo,cuda:nccl"`` group)."""
    return torch.device("cuda") if str(backend).lower() == "nccl" else torch.device("cpu")


def all_reduce_mean(values, info):
    """Average a dict of floats over the ranks (identity when not distributed), reduced on the device
    the group's backend works on (an NCCL group cannot reduce CPU tensors)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    device = reduction_device(dist.get_backend())
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {k: v / info.world_size for k, v in zip(keys, tensor.tolist())}


def all_gather_objects(obj, info):
    """Every rank's ``obj`` as a list indexed by rank (``[obj]`` when not distributed)."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj, info):
    """Rank 0's ``obj`` on every rank."""
    if not info.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
