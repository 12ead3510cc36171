"""Generate the demo data set datasets/shapes: edges -> photo pairs of procedurally drawn shapes.

    python datasets/make_demo.py              # writes datasets/shapes (refuses to replace it)
    python datasets/make_demo.py --overwrite  # regenerate in place

Step 1 draws N "photos" (numpy + PIL only, fixed seed, so the output is the
same on every machine): 1-3 shaded shapes (balls, boxes, triangles, rings)
on a textured, gradient background, 64x64 to 96x96 pixels.  Step 2 is the
data tool a user would run on real photos, ``img2img data edges``, which
turns each photo into an edges|photo AB file (edges left, photo right).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
SS = 4                                   # supersampling factor for anti-aliased shape edges
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _lerp(c0, c1, t):
    return np.asarray(c0, np.float32)[None, None] * (1 - t[..., None]) + np.asarray(c1, np.float32)[None, None] * t[..., None]


def background(rng: np.random.Generator, s: int) -> np.ndarray:
    """A soft two-color gradient with low-frequency blotches and fine grain, float (s, s, 3) in 0..255."""
    c0 = rng.uniform(120, 235, 3)
    c1 = np.clip(c0 + rng.uniform(-60, 60, 3), 60, 245)
    ang = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:s, 0:s] / (s - 1)
    t = np.clip(0.5 + (x - 0.5) * np.cos(ang) + (y - 0.5) * np.sin(ang), 0, 1)
    img = _lerp(c0, c1, t)
    blotch = Image.fromarray(rng.uniform(0, 255, (5, 5)).astype(np.uint8)).resize((s, s), Image.BICUBIC)
    img += (np.asarray(blotch, np.float32)[..., None] / 255 - 0.5) * rng.uniform(8, 20)
    if rng.random() < 0.5:                                  # faint fabric-like stripes
        freq = rng.uniform(0.3, 0.7)
        img += 4 * np.sin(freq * (x * np.cos(ang + 1) + y * np.sin(ang + 1)) * s)[..., None]
    img += rng.normal(0, 2.0, img.shape)
    return img


def shape_mask(rng: np.random.Generator, s: int, kind: str) -> tuple[np.ndarray, tuple[float, float, float]]:
    """An anti-aliased mask in 0..1 and (cx, cy, r) of a random shape."""
    big = s * SS
    r = rng.uniform(0.16, 0.32) * s
    cx, cy = rng.uniform(r, s - r), rng.uniform(r, s - r)
    m = Image.new("L", (big, big), 0)
    d = ImageDraw.Draw(m)
    R, X, Y = r * SS, cx * SS, cy * SS
    if kind == "ball":
        d.ellipse([X - R, Y - R, X + R, Y + R], fill=255)
    elif kind == "ring":
        d.ellipse([X - R, Y - R, X + R, Y + R], fill=255)
        d.ellipse([X - R * 0.5, Y - R * 0.5, X + R * 0.5, Y + R * 0.5], fill=0)
    else:
        n = 4 if kind == "box" else 3
        a0 = rng.uniform(0, 2 * np.pi)
        pts = [(X + R * np.cos(a0 + 2 * np.pi * k / n), Y + R * np.sin(a0 + 2 * np.pi * k / n)) for k in range(n)]
        d.polygon(pts, fill=255)
    m = m.resize((s, s), Image.LANCZOS)
    return np.asarray(m, np.float32) / 255, (cx, cy, r)


def photo(rng: np.random.Generator) -> np.ndarray:
    s = int(rng.integers(64, 97))
    img = background(rng, s)
    y, x = np.mgrid[0:s, 0:s].astype(np.float32)
    for _ in range(int(rng.integers(1, 4))):
        kind = ["ball", "box", "triangle", "ring"][int(rng.integers(0, 4))]
        mask, (cx, cy, r) = shape_mask(rng, s, kind)
        base = rng.uniform(20, 230, 3)
        base[rng.integers(0, 3)] = rng.uniform(180, 255)      # one strong channel: saturated colors
        # keep the shape's brightness well apart from the background's: Canny sees luminance only
        bg_lum = float((img * LUMA).sum(-1)[mask > 0.5].mean()) if (mask > 0.5).any() else 128.0
        target = bg_lum - rng.uniform(60, 100) if bg_lum > 140 else bg_lum + rng.uniform(60, 100)
        base = np.clip(base + (target - float((base * LUMA).sum())), 0, 255)
        lx, ly = cx - 0.35 * r, cy - 0.35 * r                 # light from the upper left
        dist = np.sqrt((x - lx) ** 2 + (y - ly) ** 2) / (1.6 * r)
        shade = np.clip(1.15 - 0.75 * dist, 0.35, 1.15)[..., None]
        obj = np.clip(base[None, None] * shade, 0, 255)
        shadow = np.roll(np.roll(mask, 2, 0), 2, 1) * 0.25  # a small drop shadow
        img = img * (1 - shadow[..., None])
        img = img * (1 - mask[..., None]) + obj * mask[..., None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "shapes"), help="output folder (default: datasets/shapes)")
    ap.add_argument("-n", type=int, default=48, help="number of pairs (default: 48)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ap.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    args = ap.parse_args(argv)

    from img2img.data.io import DataError
    from img2img.datatools import edges
    from img2img.files import save_image

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="img2img-demo-") as tmp:
        for i in range(args.n):
            save_image(photo(rng), Path(tmp) / f"shape_{i:03d}.png")
        try:
            # thin lines at this small size; thresholds low enough for every outline, above the texture
            res = edges(tmp, args.out, low=0.1, high=0.25, sigma=1.0, thickness=1, layout="ab", ext="png", workers=1,
                        overwrite=args.overwrite, progress=False)
        except DataError as e:
            print(f"make_demo: error: {e}", file=sys.stderr)
            return 2
    for line in res.failed:
        print(f"make_demo: {line}", file=sys.stderr)
    total = sum(f.stat().st_size for f in Path(args.out).glob("*.png"))
    print(f"make_demo: {res.done} edges|photo pairs in {args.out} ({total / 1e6:.2f} MB)")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
