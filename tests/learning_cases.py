"""The experiments behind the learning tests, in one place: the tests assert on what these return,
and ``tools/learning_margins.py`` reruns them over seeds and kernel sets to measure the margins.

Each case trains a tiny model on data it makes itself and returns the figures its test checks,
as a dict of floats.  ``lr`` is there so that a margin run can check the case fails when nothing is
learned (lr 1e-9; 0 is refused as a setting).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE = (220, 30, 30), (30, 30, 220)


def shapes(folder: Path, color, n: int, seed: int, size: int = 32) -> list[np.ndarray]:
    """n images of one red (or blue) square or disc on white; returns the shape masks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    masks = []
    for i in range(n):
        img = np.full((size, size, 3), 255, np.uint8)
        w = int(rng.integers(8, 14))
        x, y = rng.integers(3, size - w - 3, 2)
        yy, xx = np.mgrid[:size, :size]
        m = ((yy >= y) & (yy < y + w) & (xx >= x) & (xx < x + w)) if i % 2 else \
            (yy - y - w / 2) ** 2 + (xx - x - w / 2) ** 2 < (w / 2) ** 2
        img[m] = color
        Image.fromarray(img).save(folder / f"{color[0]}_{i}.png")
        masks.append(m)
    return masks


def _colours(tr, files: list[Path], masks: list[np.ndarray]) -> dict[str, float]:
    """Means over the test images of: blue-minus-red inside the shape, IoU of the blue mask with the
    shape (blue mask: blue exceeds red by 60; ``iou_bluer``: by anything), fraction of the background that stays near white; and the worst image's IoU."""
    blue, iou, iou_bluer, white = [], [], [], []
    for f, m in zip(files, masks):
        out = np.asarray(tr(Image.open(f))).astype(int)
        d = out[:, :, 2] - out[:, :, 0]
        blue.append(d[m].mean())
        for got, pred in ((iou, d > 60), (iou_bluer, d > 0)):
            got.append((pred & m).sum() / max(1, (pred | m).sum()))
        white.append((out[~m].mean(1) > 180).mean())
    return {"blue": float(np.mean(blue)), "iou": float(np.mean(iou)), "iou_min": float(np.min(iou)),
            "iou_bluer": float(np.mean(iou_bluer)), "white": float(np.mean(white))}


CYCLEGAN_STEPS = 150


def _swap_data(root: Path) -> tuple[list[Path], list[np.ndarray]]:
    """16 red shapes in root/data/A, 16 blue in root/data/B; returns 6 new red test shapes (files, masks)."""
    shapes(root / "data" / "A", RED, 16, 0)
    shapes(root / "data" / "B", BLUE, 16, 1)
    masks = shapes(root / "test", RED, 6, 2)
    return [root / "test" / f"{RED[0]}_{i}.png" for i in range(6)], masks


def cyclegan_colour_swap(root: Path, seed: int = 0, lr: float = 1e-3, steps: int = CYCLEGAN_STEPS) -> dict:
    """A ResNet-6 CycleGAN (ngf = ndf = 8) on 16 red and 16 blue shapes at 32x32; scored on 6 new red
    shapes (A -> B) and on blue training shapes turned back red (B -> A: ``red_back``)."""
    from img2img import Translator, train

    root = Path(root)
    files, masks = _swap_data(root)
    run = train(unpaired=str(root / "data"), out=str(root / "run"), load_size=32, crop_size=32,
                ngf=8, ndf=8, lr=lr, g_ema=0, max_steps=steps, seed=seed, progress=False)
    figures = _colours(Translator.load(run, device="cpu"), files, masks)
    b_file = root / "data" / "B" / f"{BLUE[0]}_0.png"
    src = np.asarray(Image.open(b_file)).astype(int)
    shape_b = (src[:, :, 2] > 150) & (src[:, :, 0] < 100)
    back = np.asarray(Translator.load(run, device="cpu", direction="BtoA")(Image.open(b_file))).astype(int)
    figures["red_back"] = float((back[:, :, 0] - back[:, :, 2])[shape_b].mean())
    figures["run"] = str(run)
    return figures


CUT_STEPS = 150


def cut_colour_swap(root: Path, seed: int = 0, lr: float = 1e-3, steps: int = CUT_STEPS, kind: str = "cut") -> dict:
    """CUT (or FastCUT) with a ResNet-6 G (ngf = ndf = 8) on the data of :func:`cyclegan_colour_swap`
    (16 red and 16 blue shapes at 32x32); scored on the same 6 new red shapes (A -> B)."""
    from img2img import Translator, train

    root = Path(root)
    files, masks = _swap_data(root)
    run = train(unpaired=str(root / "data"), model=kind, out=str(root / "run"), load_size=32, crop_size=32,
                ngf=8, ndf=8, lr=lr, g_ema=0, max_steps=steps, seed=seed, progress=False)
    figures = _colours(Translator.load(run, device="cpu"), files, masks)
    figures["run"] = str(run)
    return figures


def pix2pix_tiny(root: Path, seed: int = 1, lr: float = 2e-4) -> dict:
    """The tiny pix2pix of tests/test_train.py (8 pairs at 32x32, 25 epochs, 5 of them decaying):
    the ratio of the last 10 steps' mean G_L1 to the first 10 steps'."""
    from conftest import TINY, write_ab
    from img2img import train
    from img2img.report import read_log

    root = Path(root)
    pairs = write_ab(root / "pairs", n=8, size=32)
    run = train(pairs=str(pairs), out=str(root / "run"), epochs=20, epochs_decay=5, seed=seed, lr=lr, **TINY)
    rows = read_log(run / "log.jsonl")
    first = sum(r["G_L1"] for r in rows[:10]) / 10
    last = sum(r["G_L1"] for r in rows[-10:]) / 10
    return {"l1_ratio": last / first, "run": str(run)}
