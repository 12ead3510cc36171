"""Shared fixtures: tests make their own small data (nothing is read from the network)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# Tests use tiny tensors: one thread is as fast, and it keeps the suite steady on a busy machine
# (OpenMP threads spin-waiting for a share of 2 busy cores can slow tiny ops down 100x).
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def kernel_cache(tmp_path_factory):
    """The CPU kernel choices (nets/smallconv.py) go to a folder of this test session, not the user's
    cache; subprocesses inherit it."""
    import os
    os.environ["IMG2IMG_CACHE_DIR"] = str(tmp_path_factory.mktemp("kernel_cache"))
    yield


def shapes_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A uint8 (size, size, 3) photo-like image: a colored rectangle and disc on a gradient."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([120 + 80 * xx, 100 + 60 * yy, 140 + 40 * (xx - yy)], -1)
    x0, y0 = rng.integers(0, size // 2, 2)
    w, h = rng.integers(size // 4, size // 2, 2)
    img[y0:y0 + h, x0:x0 + w] = rng.integers(0, 255, 3)
    cx, cy, r = rng.integers(size // 4, 3 * size // 4, 2).tolist() + [size // 6]
    img[(xx * size - cx) ** 2 + (yy * size - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    return np.clip(img, 0, 255).astype(np.uint8)


def target_of(a: np.ndarray) -> np.ndarray:
    """The 'translation' the toy data asks for: color inversion."""
    return 255 - a


def write_ab(folder: Path, n: int = 8, size: int = 32, height: int | None = None, seed: int = 0,
             ext: str = "png") -> Path:
    """n AB files (A left, B = inverted A right) of width 2*size and the given height."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        a = shapes_image(rng, size)
        if height is not None:
            a = a[:height]
        Image.fromarray(np.concatenate([a, target_of(a)], 1)).save(folder / f"{i}.{ext}")
    return folder


def write_a_b(folder: Path, n: int = 6, size: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (folder / "A").mkdir(parents=True, exist_ok=True)
    (folder / "B").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = shapes_image(rng, size)
        Image.fromarray(a).save(folder / "A" / f"img{i}.png")
        Image.fromarray(target_of(a)).save(folder / "B" / f"img{i}.jpg", quality=98)
    return folder


@pytest.fixture
def ab_dir(tmp_path: Path) -> Path:
    return write_ab(tmp_path / "pairs")


TINY = dict(load_size=36, crop_size=32, ngf=8, ndf=8, progress=False, cache=True)
