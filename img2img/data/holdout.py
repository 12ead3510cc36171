"""Held-out data: the images a generator is scored on (the split itself is :mod:`.split`).

* :class:`HeldOut` -- a list of (input, target) images for scoring a generator
  (``img2img eval`` and validation while training): item ``i`` is read by
  ``read(i)`` as two uint8 arrays (H, W, C); ``directions`` are the generators the
  input goes through in turn (pix2pix: its one direction; a CycleGAN cycle:
  ``("AtoB", "BtoA")`` with the input as its own target).
* :func:`paired`, :func:`both_ways`, :func:`cycles` -- the HeldOut sets of a folder:
  pairs one way (pix2pix, ``img2img eval``), pairs both ways (A -> B against B and
  B -> A against A), or the images of two domains each through a cycle;
  :func:`holds_pairs` tells pairs from two unrelated domains.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from .io import list_images
from .paired import PairedDataset
from .unpaired import VAL_DOMAIN_FOLDERS, UnpairedDataset


@dataclass
class HeldOut:
    """Images to score a generator on (see the module docs)."""
    names: list[str]
    read: Callable[[int], tuple[np.ndarray, np.ndarray]]
    directions: tuple[str, ...]
    label: str = ""                       # e.g. "A" for the A -> B -> A cycle; "" for plain pairs
    gray_target: bool = False             # compare with the target's gray version (1-channel outputs)
    skipped: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.names)


def _read_raw_pair(ds, i: int) -> tuple[np.ndarray, np.ndarray]:
    return ds.raw(i)


def _read_swapped(ds, i: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = ds.raw(i)
    return b, a


def _read_same(ds, side: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    img = ds.raw(side, i)
    return img, img


def paired(root: str | Path, *, direction: str, size: int, colorization: bool = False,
           gray_target: bool = False, fraction: float = 0.0, seed: int = 0, part: str = "all",
           cache: bool = True) -> HeldOut:
    """The pairs under ``root`` (any ``--pairs`` layout) for scoring at ``size``: the input side
    (``direction`` applied) and the target, both as RGB; bad pairs are left out and listed."""
    ds = PairedDataset(root, direction=direction, input_nc=3, output_nc=3, colorization=colorization,
                       skip_bad=True, cache=cache, train=False, load_size=size, crop_size=size, flip=False,
                       holdout=fraction, seed=seed, part=part)
    return HeldOut([p.name for p in ds.pairs], partial(_read_raw_pair, ds), (direction,),
                   gray_target=gray_target, skipped=list(ds.scan.skipped), source=str(root))


def both_ways(root: str | Path, *, size: int, gray: tuple[bool, bool] = (False, False), fraction: float = 0.0,
              seed: int = 0, part: str = "all", cache: bool = True) -> list[HeldOut]:
    """The pairs under ``root`` (any ``--pairs`` layout) scored in both directions: A -> B against B
    (label ``AtoB``) and B -> A against A (``BtoA``); the images are read once for both.  ``gray``:
    whether A, B are compared as gray (a 1-channel side)."""
    ds = PairedDataset(root, direction="AtoB", input_nc=3, output_nc=3, skip_bad=True, cache=cache, train=False,
                       load_size=size, crop_size=size, flip=False, holdout=fraction, seed=seed, part=part)
    names, common = [p.name for p in ds.pairs], dict(skipped=list(ds.scan.skipped), source=str(root))
    return [HeldOut(names, partial(_read_raw_pair, ds), ("AtoB",), label="AtoB", gray_target=gray[1], **common),
            HeldOut(names, partial(_read_swapped, ds), ("BtoA",), label="BtoA", gray_target=gray[0], **common)]


def holds_pairs(root: str | Path) -> bool:
    """Whether the folder ``root`` holds image pairs rather than two unrelated domains: AB files (no
    domain sub-folders), or A/ and B/ whose file names match one to one (the ``--pairs`` layout).
    CycleGAN's own trainA/ + trainB/ and testA/ + testB/ are always domains."""
    root = Path(root)
    if not root.is_dir() or any((root / a).is_dir() and (root / b).is_dir()
                                for a, b in VAL_DOMAIN_FOLDERS if (a, b) != ("A", "B")):
        return False
    if (root / "A").is_dir() and (root / "B").is_dir():
        def keys(d: Path) -> set[str]:
            return {str(f.relative_to(d).with_suffix("")) for f in list_images(d)}
        return keys(root / "A") == keys(root / "B")
    return True


def cycles(root: str | Path, *, size: int, channels: tuple[int, int] = (3, 3), fraction: float = 0.0,
           seed: int = 0, part: str = "all", cache: bool = True,
           dirs: tuple[Path, Path] | None = None) -> list[HeldOut]:
    """The images of both domains under ``root`` (``dirs``, or A/ and B/, or trainA/ and trainB/), each
    its own target: A through A->B->A, B through B->A->B (cycle reconstruction)."""
    ds = UnpairedDataset(root, input_nc=channels[0], output_nc=channels[1], skip_bad=True, cache=cache,
                         train=False, load_size=size, crop_size=size, flip=False, holdout=fraction, seed=seed,
                         part=part, dirs=dirs)
    return [HeldOut([str(f.relative_to(ds.dirs[side])) for f in ds.files[side]], partial(_read_same, ds, side),
                    ways, label=label, skipped=list(ds.skipped), source=str(ds.dirs[side]))
            for side, (label, ways) in enumerate((("A", ("AtoB", "BtoA")), ("B", ("BtoA", "AtoB"))))]
