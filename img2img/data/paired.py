"""Paired data for pix2pix.

Layouts accepted by ``--pairs DIR`` (searched recursively):

* **AB files** -- one image per pair, A on the left half, B on the right
  (the pix2pix format).  Any size; the width must be even.
* **A/ and B/ folders** -- ``DIR/A/x.jpg`` pairs with ``DIR/B/x.*`` (same
  relative path, extension may differ); both images must have the same size.
* **single images** (``colorization=True``) -- any image folder; A is the L
  channel and B the ab channels of the same photo.

Bad input policy: every file is checked up front (header, size, partner),
and the run is refused with a one-line message naming the first bad file --
unless ``skip_bad`` is set, in which case bad files are left out and counted.
A file that still fails to decode mid-training (changed on disk, truncated
past its header) is skipped for that step and counted, never a traceback.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .. import color as colorlib
from .augment import build_transform, seeded
from .io import DataError, image_size, list_images, load_image
from .split import select


@dataclass(frozen=True)
class PairFiles:
    name: str                 # path relative to the data root, for messages and outputs
    a: Path                   # AB file, A file, or the single image
    b: Path | None = None     # B file in the A/ + B/ layout


@dataclass
class Scan:
    layout: str                           # "AB" | "A/B" | "single"
    pairs: list[PairFiles]
    skipped: list[str]                    # one-line messages for files left out


def scan_pairs(root: str | Path, colorization: bool = False, skip_bad: bool = False) -> Scan:
    """Find and check every pair under ``root``; raise DataError (one line) unless ``skip_bad``."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such directory")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (--pairs expects a folder of pairs)")
    problems: list[str] = []
    pairs: list[PairFiles] = []
    if colorization:
        layout = "single"
        for f in list_images(root):
            err = _check_readable(f)
            (problems.append(err) if err else pairs.append(PairFiles(str(f.relative_to(root)), f)))
    elif (root / "A").is_dir() and (root / "B").is_dir():
        layout = "A/B"
        a_files = {_key(p, root / "A"): p for p in list_images(root / "A")}
        b_files = {_key(p, root / "B"): p for p in list_images(root / "B")}
        for key in sorted(set(a_files) | set(b_files)):
            a, b = a_files.get(key), b_files.get(key)
            if a is None:
                problems.append(f"{b}: no matching file in {root / 'A'} (A/ and B/ names must match)")
                continue
            if b is None:
                problems.append(f"{a}: no matching file in {root / 'B'} (A/ and B/ names must match)")
                continue
            try:
                sa, sb = image_size(a), image_size(b)
            except DataError as e:
                problems.append(str(e))
                continue
            if sa != sb:
                problems.append(f"{b}: size {sb[0]}x{sb[1]} differs from its A image {a} ({sa[0]}x{sa[1]})")
                continue
            pairs.append(PairFiles(key, a, b))
    else:
        layout = "AB"
        for f in list_images(root):
            try:
                w, h = image_size(f)
            except DataError as e:
                problems.append(str(e))
                continue
            if w % 2:
                problems.append(f"{f}: AB image width {w} is odd, so its A and B halves differ "
                                "(expected A on the left half and B on the right, equal widths)")
                continue
            if w < 2 or h < 1:
                problems.append(f"{f}: image of {w}x{h} is too small to hold an A|B pair")
                continue
            pairs.append(PairFiles(str(f.relative_to(root)), f))
    if problems and not skip_bad:
        extra = f" (and {len(problems) - 1} more problem(s); --skip-bad leaves bad files out)" if len(problems) > 1 \
            else " (--skip-bad leaves bad files out)"
        raise DataError(problems[0] + extra)
    if not pairs:
        what = "images" if colorization else "image pairs (AB files, or A/ and B/ folders)"
        raise DataError(f"{root}: no usable {what} found" + (
            f"; {len(problems)} bad file(s) skipped, the first: {problems[0]}" if problems else ""))
    return Scan(layout, pairs, problems)


def _key(path: Path, base: Path) -> str:
    return str(path.relative_to(base).with_suffix(""))


def _check_readable(path: Path) -> str | None:
    try:
        image_size(path)
    except DataError as e:
        return str(e)
    return None


class PairedDataset(Dataset):
    """Yields ``{"A": (input_nc, S, S), "B": (output_nc, S, S), "index": i}`` in [-1, 1].

    A is what the generator is fed and B what it should produce, after
    ``direction`` is applied.  Augmentation is seeded by (seed, epoch, index),
    so a run is reproducible and resumable with any number of workers; set
    :attr:`epoch` before iterating.
    """

    def __init__(self, root: str | Path, *, direction: str = "AtoB", input_nc: int = 3, output_nc: int = 3,
                 load_size: int = 286, crop_size: int = 256, resize: bool = True, crop: bool = True,
                 flip: bool = True, color: str = "rgb", colorization: bool = False, skip_bad: bool = False,
                 cache: bool = True, divisor: int = 1, seed: int = 0, train: bool = True,
                 holdout: float = 0.0, part: str = "all"):
        self.root = Path(root)
        self.scan = scan_pairs(root, colorization=colorization, skip_bad=skip_bad)
        # --val-split: ``part`` "train" leaves the held-out pairs out, "val" keeps only them
        self.pairs = select(self.scan.pairs, lambda p: p.name, holdout, seed, part)
        self.held_out = len(self.scan.pairs) - len(self.pairs) if part == "train" else 0
        self.direction, self.color, self.colorization = direction, color, colorization
        self.input_nc, self.output_nc = input_nc, output_nc
        self.seed, self.epoch = seed, 0
        self.transform = build_transform(load_size, crop_size, resize=resize, crop=crop,
                                         flip=flip and train, divisor=divisor, train=train)
        self.preview_transform = build_transform(load_size, crop_size, resize=True, crop=False, flip=False,
                                                 divisor=divisor, train=False)
        self.failed: list[str] = []
        self._cache: list | None = None
        if cache and self._estimated_bytes() < 2 * 1024 ** 3:
            self._fill_cache(skip_bad)

    # -- decoding -----------------------------------------------------------
    def _estimated_bytes(self) -> int:
        total = 0
        for p in self.pairs[:64]:
            w, h = image_size(p.a)
            total += w * h * 3 * (2 if p.b else 1)
        return total * max(1, len(self.pairs)) // max(1, min(64, len(self.pairs)))

    def _fill_cache(self, skip_bad: bool) -> None:
        cache, keep = [], []
        for p in self.pairs:
            try:
                cache.append(self._decode(p))
                keep.append(p)
            except DataError as e:
                if not skip_bad:
                    raise DataError(f"{e} (--skip-bad leaves bad files out)") from None
                self.scan.skipped.append(str(e))
        if not keep:
            raise DataError(f"{self.root}: no usable image pairs found; {len(self.scan.skipped)} bad file(s) skipped, "
                            f"the first: {self.scan.skipped[0]}")
        self.pairs, self._cache = keep, cache

    def _decode(self, p: PairFiles) -> tuple[np.ndarray, np.ndarray]:
        """Raw (A, B) uint8 arrays before direction and channel handling."""
        if self.colorization:
            img = load_image(p.a, 3)
            return img, img
        if p.b is not None:
            a, b = load_image(p.a, 3), load_image(p.b, 3)
            if a.shape != b.shape:
                raise DataError(f"{p.b}: size {b.shape[1]}x{b.shape[0]} differs from its A image {p.a}")
            return a, b
        ab = load_image(p.a, 3)
        w = ab.shape[1] // 2
        return ab[:, :w], ab[:, w:2 * w]

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(input, target) uint8 arrays of pair ``i`` with direction and channels applied."""
        a, b = self._cache[i] if self._cache is not None else self._decode(self.pairs[i])
        if self.direction == "BtoA":
            a, b = b, a
        if self.colorization:
            return a, b
        if self.input_nc == 1:
            a = colorlib.gray_uint8(a)
        if self.output_nc == 1:
            b = colorlib.gray_uint8(b)
        return a, b

    # -- tensors ------------------------------------------------------------
    def to_tensors(self, a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        ta = torch.from_numpy(np.array(a)).permute(2, 0, 1).float().div_(255.0)
        tb = torch.from_numpy(np.array(b)).permute(2, 0, 1).float().div_(255.0)
        if self.colorization:
            L, ab = colorlib.split_l_ab(colorlib.rgb_to_lab_net(tb))
            return L, ab
        return colorlib.encode(ta, self.color), colorlib.encode(tb, self.color)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        try:
            a, b = self.raw(i)
        except DataError as e:
            return {"error": str(e), "index": i}
        with seeded(self.transform, self.seed, self.epoch, i):
            out = self.transform(image=a, target=b)
        A, B = self.to_tensors(out["image"], out["target"])
        return {"A": A, "B": B, "index": i}

    def preview(self, i: int) -> dict:
        """Pair ``i`` resized to the crop size, no randomness (for sample grids)."""
        a, b = self.raw(i)
        out = self.preview_transform(image=a, target=b)
        A, B = self.to_tensors(out["image"], out["target"])
        return {"A": A, "B": B, "index": i}

    def describe(self) -> str:
        return f"{len(self)} pairs ({self.scan.layout} layout) in {self.root}" + (
            f" ({self.held_out} more held out for validation)" if self.held_out else "") + (
            f", {len(self.scan.skipped)} bad file(s) skipped" if self.scan.skipped else "")


def collate(items: list[dict]) -> dict:
    """Stack good items; report the ones that failed to decode under ``"errors"``."""
    good = [it for it in items if "error" not in it]
    errors = [it["error"] for it in items if "error" in it]
    out: dict = {"errors": errors}
    if good:
        for k in good[0]:
            out[k] = torch.stack([it[k] for it in good]) if isinstance(good[0][k], torch.Tensor) \
                else torch.tensor([it[k] for it in good])
    return out

