"""Pictures of a run: sample grids and the loss plot (drawn with PIL, no plotting library)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .color import to_uint8
from .files import atomic_path

PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def save_png(img: Image.Image, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def save_rows_grid(rows: list[torch.Tensor], path: str | Path) -> None:
    """Sample grid: one row per example, one column per tensor in ``rows``.

    pix2pix passes [inputs, outputs, targets], each (N, 3, H, W) in [0, 1], giving
    rows of input | output | target.
    """
    from torchvision.utils import make_grid
    n = rows[0].shape[0]
    tiles = torch.stack([r[i] for i in range(n) for r in rows])
    grid = make_grid(tiles.float().cpu(), nrow=len(rows), padding=2, pad_value=1.0)
    save_png(Image.fromarray(to_uint8(grid)), path)


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> None:
    """(N, 3, H, W) in [0, 1] -> one PNG grid (about square)."""
    from torchvision.utils import make_grid
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    grid = make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    save_png(Image.fromarray(to_uint8(grid)), path)


def read_log(path: str | Path) -> list[dict]:
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue                      # a line cut by a kill: ignore it
    return rows


def smooth(values: list[float], window: int) -> list[float]:
    if window <= 1 or len(values) < 3:
        return values
    c = np.cumsum(np.insert(np.asarray(values, dtype=np.float64), 0, 0.0))
    out = []
    for i in range(len(values)):
        lo = max(0, i - window + 1)
        out.append((c[i + 1] - c[lo]) / (i + 1 - lo))
    return out


def loss_plot(rows: list[dict], path: str | Path, keys: list[str] | None = None, title: str = "losses") -> None:
    """One panel per loss term against the step, raw (light) and smoothed (dark)."""
    if not rows:
        return
    keys = keys or [k for k in rows[-1] if k not in ("step", "epoch", "lr", "time") and isinstance(rows[-1][k], (int, float))]
    keys = [k for k in keys if any(k in r for r in rows)]
    if not keys:
        return
    pw, ph, margin = 520, 220, 56
    cols = 2 if len(keys) > 1 else 1
    nrows = math.ceil(len(keys) / cols)
    img = Image.new("RGB", (cols * pw, nrows * ph + 28), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((8, 6), title, fill="black", font=font)
    for n, key in enumerate(keys):
        pts = [(r["step"], float(r[key])) for r in rows if key in r and math.isfinite(float(r[key]))]
        if not pts:
            continue
        ox, oy = (n % cols) * pw, (n // cols) * ph + 28
        x0, y0, x1, y1 = ox + margin, oy + 18, ox + pw - 12, oy + ph - 30
        steps = [p[0] for p in pts]
        vals = [p[1] for p in pts]
        sm = smooth(vals, max(1, len(vals) // 50))
        lo, hi = float(np.percentile(vals, 1)), float(np.percentile(vals, 99))
        lo, hi = min(lo, min(sm)), max(hi, max(sm))
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        smin, smax = min(steps), max(steps)
        sx = (x1 - x0) / max(1, smax - smin)

        def xy(s, v):
            v = min(max(v, lo), hi)
            return x0 + (s - smin) * sx, y1 - (v - lo) / (hi - lo) * (y1 - y0)

        draw.rectangle([x0, y0, x1, y1], outline=(180, 180, 180))
        for t in range(5):
            v = lo + (hi - lo) * t / 4
            _, y = xy(smin, v)
            draw.line([x0, y, x1, y], fill=(235, 235, 235))
            draw.text((ox + 4, y - 6), f"{v:.3g}", fill=(90, 90, 90), font=font)
        for t in range(5):
            s = smin + (smax - smin) * t / 4
            x, _ = xy(s, lo)
            draw.text((x - 10, y1 + 4), f"{int(round(s))}", fill=(90, 90, 90), font=font)
        color = PALETTE[n % len(PALETTE)]
        light = tuple(int(c + (255 - c) * 0.7) for c in color)
        if len(pts) > 1:
            draw.line([xy(s, v) for s, v in pts], fill=light, width=1)
            draw.line([xy(s, v) for s, v in zip(steps, sm)], fill=color, width=2)
        else:
            x, y = xy(*pts[0])
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=color)
        draw.text((x0 + 6, y0 + 4), f"{key}  (last {sm[-1]:.4g})", fill=color, font=font)
        draw.text((x1 - 30, y1 + 16), "step", fill=(90, 90, 90), font=font)
    save_png(img, path)
