"""Unpaired data for CycleGAN: two folders of images, one per domain.

``--unpaired DIR`` holds ``A/`` and ``B/`` (or the CycleGAN data sets' ``trainA/``
and ``trainB/``), each searched recursively.  Names need not match and the
counts may differ.  An epoch has max(#A, #B) items; item i is A image
``i mod #A`` with a B image drawn at random, seeded by (seed, epoch, i), so every
epoch pairs the domains afresh and a run is reproducible and resumable.  Each
image gets its own jitter (resize to load_size, random crop, random flip).

Bad input policy as for pairs: every file is checked up front and the first bad
one stops the run with a one-line message naming it, unless ``skip_bad``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import color as colorlib
from .augment import build_transform, item_seed, seeded
from .io import DataError, image_size, list_images, load_image
from .split import select

DOMAIN_FOLDERS = (("A", "B"), ("trainA", "trainB"))
# held-out data (--val): a CycleGAN data set's testA/ and testB/ come first, so that --val can name the
# folder whose trainA/ and trainB/ are trained on
VAL_DOMAIN_FOLDERS = (("testA", "testB"),) + DOMAIN_FOLDERS


def find_domains(root: str | Path, folders: tuple[tuple[str, str], ...] = DOMAIN_FOLDERS,
                 option: str = "--unpaired") -> tuple[Path, Path]:
    """The (A, B) folders under ``root``: the first of ``folders`` (A/ and B/, or trainA/ and trainB/)
    that are both there; DataError (one line, naming ``option``) otherwise."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such directory")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory ({option} expects a folder holding A/ and B/)")
    for a, b in folders:
        if (root / a).is_dir() and (root / b).is_dir():
            return root / a, root / b
    names = ", ".join(f"{a}/ and {b}/" for a, b in folders)
    raise DataError(f"{root}: expected two sub-folders of images ({names}) for {option}")


def _scan(folder: Path, skip_bad: bool, skipped: list[str]) -> list[Path]:
    files = []
    for f in list_images(folder):
        try:
            image_size(f)
            files.append(f)
        except DataError as e:
            if not skip_bad:
                raise DataError(f"{e} (--skip-bad leaves bad files out)") from None
            skipped.append(str(e))
    if not files:
        raise DataError(f"{folder}: no usable images found" + (f"; {len(skipped)} bad file(s) skipped" if skipped else ""))
    return files


class UnpairedDataset(Dataset):
    """Yields ``{"A": (input_nc, S, S), "B": (output_nc, S, S), "index": i}`` in [-1, 1] (see the module
    docs); set :attr:`epoch` before iterating."""

    def __init__(self, root: str | Path, *, input_nc: int = 3, output_nc: int = 3, load_size: int = 286,
                 crop_size: int = 256, resize: bool = True, crop: bool = True, flip: bool = True,
                 color: str = "rgb", skip_bad: bool = False, cache: bool = True, divisor: int = 1,
                 seed: int = 0, train: bool = True, holdout: float = 0.0, part: str = "all",
                 dirs: tuple[Path, Path] | None = None):
        self.root = Path(root)
        self.dirs = dirs or find_domains(root)
        self.skipped: list[str] = []
        found = [_scan(d, skip_bad, self.skipped) for d in self.dirs]
        # --val-split: each domain is split on its own, by the file names relative to its folder
        self.files = tuple(select(fs, lambda f, d=d: str(f.relative_to(d)), holdout, seed, part)
                           for fs, d in zip(found, self.dirs))
        self.held_out = sum(map(len, found)) - sum(map(len, self.files)) if part == "train" else 0
        self.channels = (input_nc, output_nc)
        self.color, self.seed, self.epoch = color, seed, 0
        self.transform = build_transform(load_size, crop_size, resize=resize, crop=crop, flip=flip and train,
                                         divisor=divisor, train=train)
        self.preview_transform = build_transform(load_size, crop_size, resize=True, crop=False, flip=False,
                                                 divisor=divisor, train=False)
        self._cache: tuple[list, list] | None = None
        if cache and self._estimated_bytes() < 2 * 1024 ** 3:
            self._cache = tuple([self._decode(side, i) for i in range(len(fs))] for side, fs in enumerate(self.files))

    def _estimated_bytes(self) -> int:
        total = 0
        for fs in self.files:
            sizes = [image_size(f) for f in fs[:32]]
            total += sum(w * h * 3 for w, h in sizes) * len(fs) // max(1, len(sizes))
        return total

    def _decode(self, side: int, i: int) -> np.ndarray:
        arr = load_image(self.files[side][i], 3)
        return colorlib.gray_uint8(arr) if self.channels[side] == 1 else arr

    def raw(self, side: int, i: int) -> np.ndarray:
        """uint8 (H, W, C) of image ``i`` of domain ``side`` (0: A, 1: B)."""
        return self._cache[side][i] if self._cache is not None else self._decode(side, i)

    def _tensor(self, arr: np.ndarray) -> torch.Tensor:
        return colorlib.encode(colorlib.to_float(arr), self.color)

    def __len__(self) -> int:
        return max(len(self.files[0]), len(self.files[1]))

    def partner(self, i: int) -> int:
        """The B image that item ``i`` gets in the current epoch (random, seeded by seed, epoch and i)."""
        return item_seed(self.seed, self.epoch, i, stream=2) % len(self.files[1])

    def __getitem__(self, i: int) -> dict:
        ia, ib = i % len(self.files[0]), self.partner(i)
        try:
            a, b = self.raw(0, ia), self.raw(1, ib)
        except DataError as e:
            return {"error": str(e), "index": i}
        with seeded(self.transform, self.seed, self.epoch, i):
            a = self.transform(image=a)["image"]
        with seeded(self.transform, self.seed, self.epoch, i, stream=1):
            b = self.transform(image=b)["image"]
        return {"A": self._tensor(a), "B": self._tensor(b), "index": i}

    def preview(self, i: int) -> dict:
        """A image i and B image i (modulo their counts), resized to the crop size, no randomness."""
        a = self.preview_transform(image=self.raw(0, i % len(self.files[0])))["image"]
        b = self.preview_transform(image=self.raw(1, i % len(self.files[1])))["image"]
        return {"A": self._tensor(a), "B": self._tensor(b), "index": i}

    def describe(self) -> str:
        return (f"{len(self.files[0])} A and {len(self.files[1])} B images (unpaired) in {self.root}"
                + (f" ({self.held_out} more held out for validation)" if self.held_out else "")
                + (f", {len(self.skipped)} bad file(s) skipped" if self.skipped else ""))
