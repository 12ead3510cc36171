"""Generate the demo data set datasets/shapes: outline -> coloured shape pairs that a model can learn.

    python datasets/make_demo.py              # writes datasets/shapes/{train,val} (refuses to replace them)
    python datasets/make_demo.py --overwrite  # regenerate in place

Each pair is one 256x128 PNG in the pix2pix AB format: A (left) is a line
drawing of 1-3 shapes (circles, squares, triangles, stars) in black on white,
B (right) the same shapes filled, shaded from the upper left and casting a soft
shadow on a paper-coloured background.  Everything in B follows from A: the
shapes and where they are from the outlines, and each shape's colour from the
width of its outline (thin -> gold, medium -> red, thick -> blue), so a model
can learn the task exactly; nothing is left to chance that it would have to
guess (the previous demo set's random colours and backgrounds could only be
blurred).  Drawn with numpy and PIL from a fixed seed: the same files on every
machine.  ``train`` has 200 pairs (seed 0), ``val`` 40 others (seed 1), for
``img2img eval``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = 128                                   # pixels per side of A and of B
SS = 4                                       # supersampling of the drawing (anti-aliased lines and edges)
PAPER = np.array([246, 242, 232], np.float32)
KINDS = ("circle", "square", "triangle", "star")
STYLES = ((1.2, (236, 176, 36)), (2.6, (214, 60, 48)), (4.2, (44, 98, 200)))   # outline width (px) -> colour
SPLITS = {"train": (200, 0), "val": (40, 1)}                                   # name -> (pairs, seed)


def outline_points(kind: str, cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    """Corners of a square, triangle or five-pointed star of radius r around (cx, cy)."""
    if kind == "square":
        radii = [r] * 4
    elif kind == "triangle":
        radii = [r * 1.15] * 3
    else:
        radii = [r if k % 2 == 0 else 0.45 * r for k in range(10)]
    n = len(radii)
    return [(cx + radii[k] * np.cos(rot + 2 * np.pi * k / n), cy + radii[k] * np.sin(rot + 2 * np.pi * k / n))
            for k in range(n)]


def draw_shape(d: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, rot: float, **style) -> None:
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], **style)
    else:
        d.polygon(outline_points(kind, cx, cy, r, rot), **style)


def pair(rng: np.random.Generator, s: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(A, B) uint8 arrays (s, s, 3): the outline drawing and the shaded shapes."""
    big = s * SS
    outline = Image.new("L", (big, big), 255)
    pen = ImageDraw.Draw(outline)
    photo = np.tile(PAPER, (s, s, 1))
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):                          # shapes do not overlap
            r = rng.uniform(0.12, 0.24) * s
            cx, cy = rng.uniform(r + 4, s - r - 4, 2)
            if all(np.hypot(cx - px, cy - py) > r + pr + 4 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, r))
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        rot = rng.uniform(0, 2 * np.pi)
        width, colour = STYLES[int(rng.integers(0, len(STYLES)))]
        m = Image.new("L", (big, big), 0)
        draw_shape(ImageDraw.Draw(m), kind, cx * SS, cy * SS, r * SS, rot, fill=255)
        m = m.resize((s, s), Image.LANCZOS)
        mask = np.asarray(m, np.float32) / 255
        shadow = np.asarray(m.filter(ImageFilter.GaussianBlur(2)), np.float32) / 255
        photo *= 1 - 0.3 * np.roll(shadow, (3, 3), (0, 1))[..., None]
        lx, ly = cx - 0.4 * r, cy - 0.4 * r                  # light from the upper left
        shade = np.clip(1.25 - 0.6 * np.hypot(xx - lx, yy - ly) / r, 0.55, 1.25)[..., None]
        body = np.clip(np.asarray(colour, np.float32) * shade, 0, 255)
        photo = photo * (1 - mask[..., None]) + body * mask[..., None]
        draw_shape(pen, kind, cx * SS, cy * SS, r * SS, rot, outline=0, width=int(round(width * SS)))
    a = np.asarray(outline.resize((s, s), Image.LANCZOS).convert("RGB"))
    return a, np.clip(np.round(photo), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "shapes"), help="output folder (default: datasets/shapes)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    args = ap.parse_args(argv)
    out = Path(args.out)
    existing = [p for name in SPLITS for p in (out / name).glob("*.png")]
    if existing and not args.overwrite:
        print(f"make_demo: error: {out} already holds {len(existing)} pairs; pass --overwrite to regenerate",
              file=sys.stderr)
        return 2
    for name, (n, seed) in SPLITS.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        rng = np.random.default_rng(seed)
        for i in range(n):
            a, b = pair(rng)
            Image.fromarray(np.concatenate([a, b], 1)).save(folder / f"shape_{i:03d}.png", optimize=True)
    total = sum(p.stat().st_size for p in out.rglob("*.png"))
    print(f"make_demo: {sum(n for n, _ in SPLITS.values())} outline|shape pairs in {out}/train and {out}/val "
          f"({total / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
