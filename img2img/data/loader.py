"""The folder loader under translate and eval: items that never raise, in batches of any sizes.

* :class:`SafeItems` -- a Dataset whose item ``i`` is ``read(i)``, or a one-line error in its
  place (one bad file costs one line, never the run);
* :func:`make_loader` -- a DataLoader over it yielding lists (the images' sizes differ), with
  ``workers`` decoding processes (default: :func:`img2img.device.default_workers`).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from ..device import default_workers
from ..files import first_line
from .io import DataError


class SafeItems(Dataset):
    """Item ``i`` is ``{"index": i, **read(i)}``; a failure comes back as the item
    ``{"index": i, "error": "NAME: what went wrong"}``, never as an exception (one bad file
    costs one line, not the run).  ``read`` must be picklable for worker processes."""

    def __init__(self, read: Callable[[int], dict], names: Sequence[str]):
        self.read, self.names = read, list(names)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> dict:
        try:
            return {"index": i, **self.read(i)}
        except DataError as e:
            return {"index": i, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - e.g. MemoryError on a huge file: one line, not a traceback
            return {"index": i, "error": f"{self.names[i]}: cannot decode image ({first_line(e)})"}


def make_loader(dataset: Dataset, batch_size: int, workers: int | None, device: torch.device) -> DataLoader:
    """Batches of items as lists (sizes differ); ``workers`` None means :func:`default_workers`."""
    if workers is None:
        workers = default_workers(device)
    workers = max(0, min(workers, len(dataset) // max(1, batch_size)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, collate_fn=_as_list,
                      pin_memory=device.type == "cuda", persistent_workers=False,
                      prefetch_factor=2 if workers else None)


def _as_list(items: list) -> list:
    return items


__all__ = ["SafeItems", "make_loader"]
