"""The deterministic ``--val-split``: which files a fraction holds out (a leaf of data/).

* :func:`held_out` -- which names a fraction holds out: the same names for the same
  list, fraction and seed, whatever order the files were found in (so a resumed
  run holds out the same files); adding a file moves no other file across the split.
* :func:`select` -- the items of one part (all, train, val) of a list.
"""
from __future__ import annotations

import hashlib
from typing import Callable

from .io import DataError

PARTS = ("all", "train", "val")


def held_out(names: list[str], fraction: float, seed: int) -> set[str]:
    """The names a ``fraction`` of ``names`` holds out: round(fraction * n) of them, at least one
    and never all (DataError with fewer than two), ranked by a hash of (seed, name)."""
    if fraction <= 0:
        return set()
    n = len(names)
    if n < 2:
        raise DataError(f"--val-split {fraction:g} needs at least 2 files to hold some out, found {n}")
    k = min(n - 1, max(1, round(fraction * n)))
    rank = sorted(names, key=lambda name: hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest())
    return set(rank[:k])


def select(items: list, name_of: Callable, fraction: float, seed: int, part: str) -> list:
    """The items of ``part``: all of them, those kept for training, or those held out (``val``)."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if part == "all" or fraction <= 0:
        return list(items)
    out = held_out([name_of(it) for it in items], fraction, seed)
    return [it for it in items if (name_of(it) in out) == (part == "val")]


__all__ = ["PARTS", "held_out", "select"]
