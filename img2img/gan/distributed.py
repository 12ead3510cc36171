"""Data-parallel training across processes (torchrun), with plain torch.distributed.

Launch::

    torchrun --nproc_per_node N -m img2img train --pairs DIR --out RUN ...

Every process builds the same networks from the same seed, trains on its own
shard of each epoch's shuffled order, and averages gradients with the others
(one all-reduce per network per update, over flattened buckets) before its
optimizer steps, so the weights stay identical on every rank.  This is what
DistributedDataParallel does; it is done by hand here because a GAN step
runs D several times before one backward (real, fake, then again for G),
which DDP's reducer does not allow.  Rank 0 alone writes logs, progress bars,
checkpoints and samples; a checkpoint is the same file as a single-process
one, so a run can be resumed with any number of processes.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    """This process's rank as torchrun announces it (0 when not under torchrun)."""
    return int(os.environ.get("RANK", "0"))


def setup(device_name: str) -> tuple[int, int, str]:
    """(rank, world size, device name for this process); starts the process group under torchrun."""
    world = env_world_size()
    if world <= 1:
        return 0, 1, device_name
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and device_name in ("auto", "cuda") or device_name.startswith("cuda")
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        if use_cuda:
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            device_name = f"cuda:{local}"
        elif device_name == "auto":
            device_name = "cpu"
    return dist.get_rank(), dist.get_world_size(), device_name


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def average_gradients(module: torch.nn.Module, bucket_bytes: int = 32 * 1024 ** 2) -> None:
    """All-reduce (mean) the gradients of ``module`` across ranks, in flattened buckets."""
    if not is_active():
        return
    world = dist.get_world_size()
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    bucket: list[torch.Tensor] = []
    size = 0
    for g in grads + [None]:
        if g is not None:
            bucket.append(g)
            size += g.numel() * g.element_size()
        if bucket and (g is None or size >= bucket_bytes):
            flat = torch.cat([b.reshape(-1) for b in bucket])
            dist.all_reduce(flat)
            flat.div_(world)
            offset = 0
            for b in bucket:
                b.copy_(flat[offset:offset + b.numel()].view_as(b))
                offset += b.numel()
            bucket, size = [], 0


def mean_of(values: dict[str, float], device) -> dict[str, float]:
    """Average logged scalars over ranks (one small all-reduce)."""
    if not is_active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def any_rank(flag: bool, device) -> bool:
    """True on every rank if ``flag`` is true on any (to stop all ranks together)."""
    if not is_active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t)
    return bool(t.item() > 0)


def barrier() -> None:
    if is_active():
        dist.barrier()


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
